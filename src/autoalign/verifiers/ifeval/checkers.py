"""One checker per IFEval instruction id: (response, **kwargs from the data file) -> followed?

Written from the instruction ids, their arguments and the prompts' wording, then checked
against the benchmark's reference implementation (tests/test_ifeval_parity.py) and brought into
line with its conventions, so scores compare with published ones: bullets and `***`-separated
paragraphs must match exactly; highlights, placeholders and sections are "at least"; relations
read "at least" -> count >= N and "less than" -> count < N; keywords match case-insensitively,
inside longer words too (forbidden words only as whole words); a text whose language cannot be
detected counts as in any language. Sentence counts follow the reference's Punkt splitter
closely but not exactly (its trained English model is not installable offline).
An empty response follows no instruction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from langdetect import DetectorFactory, LangDetectException
from langdetect.detector_factory import PROFILES_DIRECTORY
from nltk.tokenize import NLTKWordTokenizer

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

_WORD = re.compile(r"\w+")
_TREEBANK = NLTKWordTokenizer()

# Words after which a period does not end a sentence: titles, company suffixes, some months and
# dotted abbreviations, the ones the benchmark's splitter (Punkt's English model) treats so when
# probed here; single letters (initials) too. Others ("e.g.", "i.e.", "P.S.") end a sentence there,
# and so here.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs inc ltd co corp jan feb aug sep sept oct nov dec ft gen col lt sen rep "
    "u.s u.k u.n u.s.a a.m p.m d.c ph.d a.d".split()
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


def words(text: str) -> list[str]:
    """Runs of letters, digits and underscores (the benchmark's word count: "well-known" is two)."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences end at . ! or ? (closing quotes or brackets included) followed by whitespace, as
    the benchmark's sentence splitter (Punkt) does: a line break alone does not end a sentence,
    nor does a period after a known abbreviation or an initial, nor an ellipsis followed by a
    lower-case word."""
    found, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()].split()
        last = before[-1].rstrip(".").lower() if before else ""
        following = text[match.end() :].lstrip()[:1]
        if match.group().startswith(".") and match.group().rstrip("\"'”’)]") == ".":
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        if match.group().startswith("...") and following.islower():
            continue
        found.append(text[start : match.end()])
        start = match.end()
    found.append(text[start:])
    return [s.strip() for s in found if s.strip()]


def capital_words(text: str) -> list[str]:
    """Words in capitals, as Treebank tokens: a hyphenated or dotted word ("WELL-KNOWN", "U.S.") is one."""
    return [token for token in _TREEBANK.tokenize(text) if token.isupper()]


def _detector_factory() -> DetectorFactory:
    """Our own langdetect factory with a fixed seed (langdetect samples): the same verdict every
    time, without changing the library's global factory."""
    global _FACTORY
    if _FACTORY is None:
        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.seed = 0
        _FACTORY = factory
    return _FACTORY


_FACTORY: DetectorFactory | None = None


def detect_language(text: str) -> str | None:
    """The language code, or None when there are no letters to go on."""
    detector = _detector_factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None


def _language_is(text: str, language: str) -> bool:
    """The benchmark counts a text whose language cannot be detected (no letters) as following."""
    detected = detect_language(text)
    return detected is None or detected == language


def occurrences(text: str, phrase: str) -> int:
    """Case-insensitive occurrences, inside longer words too (the benchmark's keyword matching)."""
    return len(re.findall(re.escape(phrase), text, re.IGNORECASE))


def uses_word(text: str, word: str) -> bool:
    """The word, case-insensitive, as a whole word (the benchmark's forbidden-word matching)."""
    return re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


def placeholders(text: str) -> int:
    return len(re.findall(r"\[.*?\]", text))


def section_markers(text: str, splitter: str) -> int:
    return len(re.findall(re.escape(splitter) + r"\s?\d+", text))


def bullets(text: str) -> int:
    """Lines starting with "* " (not "**") or "-", as the benchmark counts them."""
    return len(re.findall(r"^\s*\*[^*].*$", text, re.MULTILINE)) + len(re.findall(r"^\s*-.*$", text, re.MULTILINE))


def highlights(text: str) -> int:
    """*Marked* or **marked** spans with something in them."""
    single = [s for s in re.findall(r"\*[^\n*]*\*", text) if s.strip("*").strip()]
    double = [s for s in re.findall(r"\*\*[^\n*]*\*\*", text) if s[2:-2].strip()]
    return len(single) + len(double)


def divider_paragraphs(text: str) -> list[str]:
    """The text split at markdown dividers (***), empty parts kept."""
    return re.split(r"\s?\*\*\*\s?", text)


# --- checkers ---------------------------------------------------------------------------------


@checker("change_case:capital_word_frequency")
def capital_word_frequency(response: str, capital_frequency: int, capital_relation: str) -> bool:
    return compare(len(capital_words(response)), capital_relation, capital_frequency)


@checker("change_case:english_capital")
def english_capital(response: str) -> bool:
    return response.isupper() and _language_is(response, "en")


@checker("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    return response.islower() and _language_is(response, "en")


@checker("combination:repeat_prompt")
def repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@checker("combination:two_responses")
def two_responses(response: str) -> bool:
    parts = response.split("******")
    # A separator at the very start or end leaves an empty part, which is allowed; one between two
    # separators is not.
    if any(not p.strip() for p in parts[1:-1]):
        return False
    answers = [p.strip() for p in parts if p.strip()]
    return len(answers) == 2 and answers[0] != answers[1]


@checker("detectable_content:number_placeholders")
def number_placeholders(response: str, num_placeholders: int) -> bool:
    return placeholders(response) >= num_placeholders


@checker("detectable_content:postscript")
def postscript(response: str, postscript_marker: str) -> bool:
    # "P.S." also matches "p. s."; the marker may stand anywhere, as in the benchmark.
    marker = postscript_marker.strip().lower()
    if marker in ("p.s.", "p.p.s", "p.p.s."):
        letters = marker.rstrip(".").split(".")
        pattern = r"\.\s?".join(re.escape(c) for c in letters) + (r"\." if marker == "p.s." else "")
    else:
        pattern = re.escape(marker)
    return re.search(pattern, response.lower()) is not None


CONSTRAINED_ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@checker("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    return any(option in response for option in CONSTRAINED_ANSWERS)


@checker("detectable_format:json_format")
def json_format(response: str) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@checker("detectable_format:multiple_sections")
def multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    return section_markers(response, section_spliter) >= num_sections


@checker("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, num_bullets: int) -> bool:
    return bullets(response) == num_bullets


@checker("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, num_highlights: int) -> bool:
    return highlights(response) >= num_highlights


@checker("detectable_format:title")
def title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


@checker("keywords:existence")
def keywords_existence(response: str, keywords: list[str]) -> bool:
    return all(occurrences(response, k) for k in keywords)


@checker("keywords:forbidden_words")
def forbidden_words(response: str, forbidden_words: list[str]) -> bool:
    return not any(uses_word(response, w) for w in forbidden_words)


@checker("keywords:frequency")
def keyword_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return compare(occurrences(response, keyword), relation, frequency)


@checker("keywords:letter_frequency")
def letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return compare(response.lower().count(letter.lower()), let_relation, let_frequency)


@checker("language:response_language")
def response_language(response: str, language: str) -> bool:
    return _language_is(response, language)


@checker("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = response.split("\n\n")
    if sum(bool(p.strip()) for p in paragraphs) != num_paragraphs or not 1 <= nth_paragraph <= num_paragraphs:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    # The first word, without leading quotes, up to the first punctuation mark.
    opening = re.match(r"[^.,?!'\"]*", paragraph.split()[0].lstrip("'").lstrip('"')).group()
    return opening.lower() == first_word.strip().lower()


@checker("length_constraints:number_paragraphs")
def number_paragraphs(response: str, num_paragraphs: int) -> bool:
    paragraphs = divider_paragraphs(response)
    # An empty paragraph between two dividers breaks the count; one before the first or after
    # the last divider is just the divider at an edge.
    if any(not p.strip() for p in paragraphs[1:-1]):
        return False
    return sum(bool(p.strip()) for p in paragraphs) == num_paragraphs


@checker("length_constraints:number_sentences")
def number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return compare(len(sentences(response)), relation, num_sentences)


@checker("length_constraints:number_words")
def number_words(response: str, num_words: int, relation: str) -> bool:
    return compare(len(words(response)), relation, num_words)


@checker("punctuation:no_comma")
def no_comma(response: str) -> bool:
    return "," not in response


@checker("startend:end_checker")
def end_checker(response: str, end_phrase: str) -> bool:
    # A closing quote around the whole answer does not hide its last words.
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@checker("startend:quotation")
def quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'
