"""Deterministic repairs: for a constraint that admits one, the smallest edit of a response that
makes it pass (change the case, wrap in quotes, append the required ending or postscript, remove
commas, add a title...), keeping the content otherwise. A repaired response > the original is a
minimal-difference preference pair (source `repair`).

repair_response applies the repairs of every constraint of a prompt in an order that keeps
earlier fixes intact, and returns None when the result still fails one of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from autoalign.verifiers.ifeval.checkers import occurrences
from autoalign.verifiers.ifeval.data import IFEvalPrompt
from autoalign.verifiers.ifeval.scoring import follows

Repair = Callable[..., str]


def _without_commas(text: str) -> str:
    # ", " between words reads as a pause: drop the comma, keep one space.
    return re.sub(r"\s*,\s*", " ", text).strip() if "," in text else text


def _end_with(text: str, end_phrase: str) -> str:
    text = text.rstrip()
    return text if text.lower().endswith(end_phrase.strip().lower()) else f"{text}\n{end_phrase.strip()}"


def _postscript(text: str, postscript_marker: str) -> str:
    return f"{text.rstrip()}\n\n{postscript_marker} Thank you for reading."


def _title(text: str) -> str:
    first = re.sub(r"[^\w\s]", "", text.strip().split("\n")[0]).split()[:5]
    return f"<<{' '.join(first).title() or 'Answer'}>>\n\n{text.strip()}"


def _quoted(text: str) -> str:
    inner = text.strip().strip('"').replace('"', "'")
    return f'"{inner}"'


def _json(text: str) -> str:
    return json.dumps({"response": text.strip()}, ensure_ascii=False, indent=2)


def _repeat(text: str, prompt_to_repeat: str) -> str:
    return f"{prompt_to_repeat.strip()}\n\n{text.strip()}"


def _keywords(text: str, keywords: list[str]) -> str:
    missing = [k for k in keywords if not occurrences(text, k)]
    if not missing:
        return text
    listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
    return f"{text.rstrip()}\n\nKey words: {listed}."


def _forbidden(text: str, forbidden_words: list[str]) -> str:
    for word in forbidden_words:
        text = re.sub(rf"\s*\b{re.escape(word)}\b", "", text, flags=re.IGNORECASE)
    return text


REPAIRS: dict[str, Repair] = {
    "change_case:english_lowercase": lambda text: text.lower(),
    "change_case:english_capital": lambda text: text.upper(),
    "punctuation:no_comma": _without_commas,
    "keywords:forbidden_words": _forbidden,
    "keywords:existence": _keywords,
    "detectable_format:title": _title,
    "combination:repeat_prompt": _repeat,
    "detectable_content:postscript": _postscript,
    "startend:end_checker": _end_with,
    "startend:quotation": _quoted,
    "detectable_format:json_format": _json,
}
"""In the order they are applied: case first (the later additions are case-checked too), then
content edits, then additions at the start and end, then wrappers around the whole answer."""


def repair_response(item: IFEvalPrompt, response: str) -> str | None:
    """The response with every failing constraint of the prompt repaired, or None when one has no
    repair or the repaired text still fails a constraint (a repair can break another)."""
    failing = {i for i, k in zip(item.instruction_ids, item.kwargs) if not follows(response, i, k)}
    if not failing or not response.strip() or any(i not in REPAIRS for i in failing):
        return None
    kwargs_of = dict(zip(item.instruction_ids, item.kwargs))
    text = response
    for instruction_id, repair in REPAIRS.items():
        if instruction_id in kwargs_of and (instruction_id in failing or instruction_id.startswith("change_case")):
            text = repair(text, **kwargs_of[instruction_id])
    # Case constraints are applied last as well, so text added by later repairs obeys them.
    for instruction_id in ("change_case:english_lowercase", "change_case:english_capital"):
        if instruction_id in kwargs_of:
            text = REPAIRS[instruction_id](text)
    if all(follows(text, i, k) for i, k in zip(item.instruction_ids, item.kwargs)):
        return text
    return None
