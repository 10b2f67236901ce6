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

from autoalign.verifiers.ifeval.checkers import highlights, occurrences, sentences, words
from autoalign.verifiers.ifeval.data import IFEvalPrompt
from autoalign.verifiers.ifeval.scoring import follows

Repair = Callable[..., str]

MIN_KEPT_WORDS = 12
"""A trimmed answer keeps at least this many words, or there is no trimmed answer."""


def complete_prefix(text: str) -> str | None:
    """An answer cut off at max tokens, shortened to where it could have stopped: its last
    complete paragraph, else its last complete line, else its last complete sentence (a lead-in
    line ending in ":" goes too). None when less than MIN_KEPT_WORDS words would remain.
    trimmed > cut-off is the repair of truncation: it teaches the learner to finish in budget."""
    body = text.rstrip()
    for cut in (body.rfind("\n\n"), body.rfind("\n")):
        if cut > 0 and (kept := _without_lead_in(body[:cut])) and len(kept.split()) >= MIN_KEPT_WORDS:
            return kept
    ends = [m.end() for m in re.finditer(r"[.!?][\"')\]]*(?=\s)", body)]
    if ends and len((kept := body[: ends[-1]].rstrip()).split()) >= MIN_KEPT_WORDS:
        return kept
    return None


def _without_lead_in(text: str) -> str:
    lines = text.rstrip().split("\n")
    while lines and lines[-1].rstrip().endswith(":"):
        lines.pop()
    return "\n".join(lines).rstrip()


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


def _cut_after(text: str, pieces: list[str], count: int) -> str:
    """text up to the end of its first `count` pieces (sentences, found in order), layout kept."""
    end = 0
    for piece in pieces[:count]:
        end = text.find(piece, end) + len(piece)
    return text[:end].rstrip()


def _fewer_sentences(text: str, num_sentences: int, relation: str) -> str:
    # Only "less than" has a repair (drop the last sentences); "at least" would need new content.
    return _cut_after(text, sentences(text), num_sentences - 1) if relation == "less than" else text


def _fewer_words(text: str, num_words: int, relation: str) -> str:
    if relation != "less than":
        return text
    pieces, kept, total = sentences(text), 0, 0
    for sentence in pieces:
        total += len(words(sentence))
        if total >= num_words:
            break
        kept += 1
    return _cut_after(text, pieces, kept)


def _highlighted(text: str, num_highlights: int) -> str:
    """Mark sentences of lines without markup as *highlighted*, in order, until there are enough."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        done = 0  # where the next sentence is looked for: a repeated sentence is marked once each
        for sentence in sentences(line) if "*" not in line else []:
            if highlights("\n".join(lines)) >= num_highlights:
                return "\n".join(lines)
            at = lines[index].find(sentence, done)
            lines[index] = f"{lines[index][:at]}*{sentence}*{lines[index][at + len(sentence) :]}"
            done = at + len(sentence) + 2
    return "\n".join(lines)


def plain_sentences(text: str) -> list[str]:
    """The text's sentences with list markers, markdown dividers and line breaks taken out."""
    flat = " ".join(re.sub(r"^\s*(?:[*\-#]+|\d+[.)])\s*", "", line) for line in text.split("\n") if line.strip())
    return sentences(flat.replace("***", " "))


def _groups(items: list[str], count: int) -> list[str]:
    """items joined into `count` consecutive groups of near-equal size (empty when too few)."""
    if len(items) < count:
        return []
    size, extra = divmod(len(items), count)
    bounds = [k * size + min(k, extra) for k in range(count + 1)]
    return [" ".join(items[a:b]) for a, b in zip(bounds, bounds[1:])]


def _bulleted(text: str, num_bullets: int) -> str:
    groups = _groups(plain_sentences(text), num_bullets)
    return "\n".join(f"* {g}" for g in groups) if groups else text


def _paragraphs(text: str, num_paragraphs: int) -> str:
    """Exactly num_paragraphs paragraphs between *** dividers: the existing paragraphs merged
    from the end, or the sentences grouped when there are too few paragraphs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n|\*\*\*", text) if p.strip()]
    if len(paragraphs) < num_paragraphs:
        paragraphs = _groups(plain_sentences(text), num_paragraphs)
    elif len(paragraphs) > num_paragraphs:
        paragraphs = paragraphs[: num_paragraphs - 1] + ["\n\n".join(paragraphs[num_paragraphs - 1 :])]
    return "\n\n***\n\n".join(paragraphs) if paragraphs else text


REPAIRS: dict[str, Repair] = {
    "change_case:english_lowercase": lambda text: text.lower(),
    "change_case:english_capital": lambda text: text.upper(),
    "length_constraints:number_sentences": _fewer_sentences,
    "length_constraints:number_words": _fewer_words,
    "punctuation:no_comma": _without_commas,
    "keywords:forbidden_words": _forbidden,
    "keywords:existence": _keywords,
    "detectable_format:number_bullet_lists": _bulleted,
    "length_constraints:number_paragraphs": _paragraphs,
    "detectable_format:number_highlighted_sections": _highlighted,
    "detectable_format:title": _title,
    "combination:repeat_prompt": _repeat,
    "detectable_content:postscript": _postscript,
    "startend:end_checker": _end_with,
    "startend:quotation": _quoted,
    "detectable_format:json_format": _json,
}
"""In the order they are applied: case first (the later additions are case-checked too), then
cuts, then content edits, then layouts (bullets, paragraphs, highlights), then additions at the
start and end, then wrappers around the whole answer."""


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
