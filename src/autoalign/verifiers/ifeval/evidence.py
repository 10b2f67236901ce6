"""A sentence of evidence for a checker's verdict ("found 3 commas; commas are not allowed"): what
the critic tells the learner, so a rewrite knows what to change. Counted the way the checkers
count (checkers.py)."""

from __future__ import annotations

from autoalign.verifiers.ifeval.checkers import (
    bullets,
    capital_words,
    detect_language,
    divider_paragraphs,
    highlights,
    occurrences,
    placeholders,
    section_markers,
    sentences,
    uses_word,
    words,
)
from autoalign.verifiers.ifeval.scoring import follows

_WANT = {"at least": "at least", "less than": "fewer than"}


def _count(found: int, what: str, relation: str, target: int) -> str:
    return f"{found} {what}; needs {_WANT[relation]} {target}"


def _case(wrong_letters: int, kind: str) -> str:
    """The case checkers also need the text to read as English: say which part failed."""
    if wrong_letters == 0:
        return "the text is not recognised as English (the language detector decides)"
    return f"{wrong_letters} {kind} letters; none are allowed"


def _describe(instruction_id: str, k: dict, text: str) -> str:
    stripped = text.strip()
    cases = {
        "punctuation:no_comma": lambda: f"found {text.count(',')} commas; commas are not allowed",
        "length_constraints:number_words": lambda: _count(
            len(words(text)), "words", k.get("relation"), k.get("num_words")
        ),
        "length_constraints:number_sentences": lambda: _count(
            len(sentences(text)), "sentences", k.get("relation"), k.get("num_sentences")
        ),
        "length_constraints:number_paragraphs": lambda: (
            f"{sum(bool(p.strip()) for p in divider_paragraphs(text))} paragraphs separated by ***; "
            f"needs exactly {k.get('num_paragraphs')}"
        ),
        "detectable_format:number_bullet_lists": lambda: (
            f"{bullets(text)} bullet points; needs exactly {k.get('num_bullets')}"
        ),
        "detectable_format:number_highlighted_sections": lambda: (
            f"{highlights(text)} highlighted parts (*like this*); needs at least {k.get('num_highlights')}"
        ),
        "detectable_content:number_placeholders": lambda: (
            f"{placeholders(text)} placeholders in [square brackets]; needs at least {k.get('num_placeholders')}"
        ),
        "detectable_format:multiple_sections": lambda: (
            f"{section_markers(text, k.get('section_spliter', ''))} sections marked '{k.get('section_spliter')} N'; "
            f"needs at least {k.get('num_sections')}"
        ),
        "keywords:frequency": lambda: _count(
            occurrences(text, k.get("keyword", "")),
            f"uses of '{k.get('keyword')}'",
            k.get("relation"),
            k.get("frequency"),
        ),
        "keywords:letter_frequency": lambda: _count(
            text.lower().count(str(k.get("letter", "")).lower()),
            f"letters '{k.get('letter')}'",
            k.get("let_relation"),
            k.get("let_frequency"),
        ),
        "change_case:capital_word_frequency": lambda: _count(
            len(capital_words(text)),
            "words in capitals",
            k.get("capital_relation"),
            k.get("capital_frequency"),
        ),
        "keywords:existence": lambda: "missing: "
        + ", ".join(w for w in k.get("keywords", []) if not occurrences(text, w)),
        "keywords:forbidden_words": lambda: "uses: "
        + ", ".join(w for w in k.get("forbidden_words", []) if uses_word(text, w)),
        "change_case:english_lowercase": lambda: _case(sum(c.isupper() for c in text), "capital"),
        "change_case:english_capital": lambda: _case(sum(c.islower() for c in text), "lowercase"),
        "startend:quotation": lambda: "the answer does not start and end with a double quotation mark",
        "startend:end_checker": lambda: f'the answer does not end with "{k.get("end_phrase")}"',
        "detectable_content:postscript": lambda: f"no postscript starting with {k.get('postscript_marker')}",
        "detectable_format:title": lambda: "no title in double angle brackets, like <<title>>",
        "detectable_format:json_format": lambda: "the answer is not valid JSON",
        "combination:repeat_prompt": lambda: "the answer does not start with the request, repeated word for word",
        "combination:two_responses": lambda: "not two different answers separated by a line of ******",
        "detectable_format:constrained_response": lambda: "none of the allowed answers (My answer is yes./no./maybe.)",
        "language:response_language": lambda: f"written in '{detect_language(text)}', not '{k.get('language')}'",
        "length_constraints:nth_paragraph_first_word": lambda: (
            f"{len([p for p in text.split(chr(10) * 2) if p.strip()])} paragraphs; needs {k.get('num_paragraphs')}, "
            f"paragraph {k.get('nth_paragraph')} starting with '{k.get('first_word')}'"
        ),
    }
    if not stripped:
        return "the answer is empty"
    return cases[instruction_id]()


def evidence(instruction_id: str, kwargs: dict, response: str) -> str:
    """Why the response follows the constraint or not, in one sentence."""
    if follows(response, instruction_id, kwargs):
        return "followed"
    return _describe(instruction_id, kwargs, response)
