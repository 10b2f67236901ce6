"""The critic's quality guard: whatever the constraints say, a degenerate answer fails. Without it
a verifier is easy to game: an empty answer "uses no commas", a cut-off one "is in lower case",
and a loop of one phrase "mentions the keyword three times".
"""

from __future__ import annotations

import re
import zlib

MIN_WORDS = 3
MAX_COMPRESSION = 4.0
"""Raw bytes / zlib-compressed bytes above this is a repetition loop (ordinary prose is ~2-3)."""
MAX_LINE_REPEATS = 3


def quality_problem(response: str, finish_reason: str | None = None) -> str | None:
    """Why the answer is degenerate (empty, truncated, too_short, repetition), or None."""
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
    return None
