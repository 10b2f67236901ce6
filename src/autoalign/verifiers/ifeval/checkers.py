"""One checker per IFEval instruction id: (response, **kwargs from the data file) -> followed?

Written from the instruction ids, their arguments and the prompts' wording. Where the prompt
wording leaves a count open, the benchmark's published conventions are followed: bullets and
`***`-separated paragraphs must match exactly; highlights, placeholders and sections are "at
least"; relations read "at least" -> count >= N and "less than" -> count < N. Matching of
keywords is case-insensitive on whole words; letters are counted case-insensitively.
An empty response follows no instruction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from langdetect import DetectorFactory, LangDetectException, detect

DetectorFactory.seed = 0  # langdetect samples; a fixed seed makes the verdict reproducible

Checker = Callable[..., bool]
CHECKERS: dict[str, Checker] = {}
RELATIONS = ("at least", "less than")


def checker(instruction_id: str):
    def register(fn: Checker) -> Checker:
        CHECKERS[instruction_id] = fn
        return fn

    return register


def compare(count: int, relation: str, target: int) -> bool:
    if relation == "at least":
        return count >= target
    if relation == "less than":
        return count < target
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


# --- text units -------------------------------------------------------------------------------

_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_ABBREVIATIONS = (
    "mr.",
    "mrs.",
    "ms.",
    "dr.",
    "prof.",
    "st.",
    "vs.",
    "etc.",
    "e.g.",
    "i.e.",
    "inc.",
    "jr.",
    "sr.",
    "no.",
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences end at . ! or ? (closing quotes/brackets included) followed by whitespace, or at
    a line break; a period after a common abbreviation does not end one. Segments without a
    letter or digit (a divider, a lone bullet marker) are not sentences."""
    found: list[str] = []
    for line in text.splitlines():
        start = 0
        for match in re.finditer(r"[.!?]+[\"'”’)\]]*(?=\s|$)", line):
            segment = line[start : match.end()]
            last_word = segment.split()[-1].lower() if segment.split() else ""
            if last_word in _ABBREVIATIONS:
                continue
            found.append(segment)
            start = match.end()
        found.append(line[start:])
    return [s.strip() for s in found if re.search(r"[^\W_]", s)]


def detect_language(text: str) -> str | None:
    try:
        return detect(text)
    except LangDetectException:  # no letters to go on
        return None


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def _count_word(text: str, word: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE))


# --- checkers ---------------------------------------------------------------------------------


@checker("change_case:capital_word_frequency")
def capital_word_frequency(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = [w for w in words(response) if w.isupper()]
    return compare(len(capitals), capital_relation, capital_frequency)


@checker("change_case:english_capital")
def english_capital(response: str) -> bool:
    return response.isupper() and detect_language(response) == "en"


@checker("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    return response.islower() and detect_language(response) == "en"


@checker("combination:repeat_prompt")
def repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@checker("combination:two_responses")
def two_responses(response: str) -> bool:
    parts = [p.strip() for p in response.split("******")]
    # A separator at the very start or end leaves an empty part: not two responses.
    return len(parts) == 2 and all(parts) and parts[0] != parts[1]


@checker("detectable_content:number_placeholders")
def number_placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[[^\[\]\n]+\]", response)) >= num_placeholders


@checker("detectable_content:postscript")
def postscript(response: str, postscript_marker: str) -> bool:
    # "P.S." also matches "P. S." or "p.s."; the marker must start a line.
    letters = [re.escape(c) for c in postscript_marker.replace(" ", "").rstrip(".").split(".")]
    pattern = r"^\s*" + r"\.\s*".join(letters) + r"\.?"
    return re.search(pattern, response, re.IGNORECASE | re.MULTILINE) is not None


CONSTRAINED_ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@checker("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    return any(option in response for option in CONSTRAINED_ANSWERS)


@checker("detectable_format:json_format")
def json_format(response: str) -> bool:
    text = response.strip()
    fenced = re.fullmatch(r"```(?:json|JSON)?\s*\n?(.*?)\n?```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@checker("detectable_format:multiple_sections")
def multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    markers = re.findall(rf"(?<!\w){re.escape(section_spliter.strip())}\s+\d+", response)
    return len(markers) >= num_sections


@checker("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, num_bullets: int) -> bool:
    bullets = re.findall(r"^\s*[*-][ \t]+\S", response, re.MULTILINE)
    return len(bullets) == num_bullets


@checker("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, num_highlights: int) -> bool:
    spans = re.findall(r"\*\*[^*\n]*[^\s*][^*\n]*\*\*|\*[^*\n]*[^\s*][^*\n]*\*", response)
    return len(spans) >= num_highlights


@checker("detectable_format:title")
def title(response: str) -> bool:
    return re.search(r"<<[^<>\n]*\S[^<>\n]*>>", response) is not None


@checker("keywords:existence")
def keywords_existence(response: str, keywords: list[str]) -> bool:
    return all(_has_word(response, k) for k in keywords)


@checker("keywords:forbidden_words")
def forbidden_words(response: str, forbidden_words: list[str]) -> bool:
    return not any(_has_word(response, w) for w in forbidden_words)


@checker("keywords:frequency")
def keyword_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return compare(_count_word(response, keyword), relation, frequency)


@checker("keywords:letter_frequency")
def letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return compare(response.lower().count(letter.lower()), let_relation, let_frequency)


@checker("language:response_language")
def response_language(response: str, language: str) -> bool:
    return detect_language(response) == language


def _paragraphs(response: str, separator: str) -> list[str]:
    return [p.strip() for p in re.split(separator, response)]


@checker("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = [p for p in _paragraphs(response, r"\n\s*\n") if p]
    if len(paragraphs) != num_paragraphs or not 1 <= nth_paragraph <= len(paragraphs):
        return False
    opening = words(paragraphs[nth_paragraph - 1])
    return bool(opening) and opening[0].lower() == first_word.strip().lower()


@checker("length_constraints:number_paragraphs")
def number_paragraphs(response: str, num_paragraphs: int) -> bool:
    paragraphs = _paragraphs(response, r"\s*\*\*\*\s*")
    # An empty paragraph between two dividers breaks the count; one before the first or after
    # the last divider is just the divider at an edge.
    inner = paragraphs[1:-1] if len(paragraphs) > 2 else []
    if any(not p for p in inner):
        return False
    return len([p for p in paragraphs if p]) == num_paragraphs


@checker("length_constraints:number_sentences")
def number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return compare(len(sentences(response)), relation, num_sentences)


@checker("length_constraints:number_words")
def number_words(response: str, num_words: int, relation: str) -> bool:
    return compare(len(words(response)), relation, num_words)


@checker("punctuation:no_comma")
def no_comma(response: str) -> bool:
    return "," not in response and "，" not in response


@checker("startend:end_checker")
def end_checker(response: str, end_phrase: str) -> bool:
    return response.strip().lower().endswith(end_phrase.strip().lower())


@checker("startend:quotation")
def quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'
