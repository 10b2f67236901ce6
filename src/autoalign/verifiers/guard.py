"""The critic's quality guard: whatever the constraints say, a degenerate answer fails. Without it
a verifier is easy to game: an empty answer "uses no commas", a cut-off one "is in lower case",
a loop of one phrase "mentions the keyword three times", and an answer about something else
(or the constraints echoed back) meets them all.
"""

from __future__ import annotations

import re
import zlib

MIN_WORDS = 3
MAX_COMPRESSION = 4.0
"""Raw bytes / zlib-compressed bytes above this is a repetition loop (ordinary prose is ~2-3)."""
MAX_LINE_REPEATS = 3

TASK_FILLER = frozenset(
    """about above after again also because been before being below between both could does doing during each
    every from have having here into just more most other over same should some such than that their them then
    there these they this those through under until very what when where which while will with would your
    yours write give explain describe tell telling short someone something curious related involves whose""".split()
)
"""Words of a task that say what to do, not what about: an answer need not repeat them."""
STEM = 5
"""Words are compared by their first letters: "bicycles" matches "bicycle", "moonlit" "moon"."""


def topic_stems(text: str) -> set[str]:
    """The stems of a text's content words (4+ letters, not filler): their first STEM letters."""
    words = re.findall(r"[a-z]+", text.lower())
    return {w[:STEM] for w in words if len(w) >= 4 and w not in TASK_FILLER}


def _prefixes(text: str) -> set[str]:
    """Every word's first 4 and first STEM letters: what a task's stem (4 or 5 letters) can match."""
    words = [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4]
    return {w[:4] for w in words} | {w[:STEM] for w in words}


def off_task(response: str, task: str) -> bool:
    """True when the answer shares no content word with its task: "Write a poem about the ocean"
    answered without "ocean" or "poem". Small models that learn to satisfy a verifier drift to
    answers like that (the constraints repeated back, assistant boilerplate, a table of numbers);
    a task without content words gives no evidence, so nothing is flagged."""
    anchors = topic_stems(task)
    return bool(anchors) and not anchors & _prefixes(response)


def quality_problem(response: str, finish_reason: str | None = None, task: str | None = None) -> str | None:
    """Why the answer is degenerate (empty, truncated, too_short, repetition, off_task), or None.
    task: the request without its constraints, for the off-task check (None: not checked)."""
    text = response.strip()
    if not text:
        return "empty"
    if finish_reason == "length":
        return "truncated"
    if finish_reason == "error":
        return "failed"
    if len(re.findall(r"\w+", text)) < MIN_WORDS:
        return "too_short"
    data = text.encode("utf-8")
    if len(data) >= 200 and len(data) / len(zlib.compress(data, 9)) > MAX_COMPRESSION:
        return "repetition"
    lines = [line.strip().lower() for line in text.splitlines() if len(line.strip()) >= 12]
    if lines and max(lines.count(line) for line in set(lines)) > MAX_LINE_REPEATS:
        return "repetition"
    if task is not None and off_task(text, task):
        return "off_task"
    return None
