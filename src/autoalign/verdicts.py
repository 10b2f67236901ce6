"""Reading a judge's verdict from its own output: pure functions, no model, so data loaders
(EFT judgements), judges and evaluation all parse the same way.

Only the final non-empty line counts, and only in the plain format the templates ask for:
`Score: N` (N one ASCII digit 0..5) or `Winner: A|B`, optionally in bold; a quoted or code line,
other digits, or extra words give None.
"""

from __future__ import annotations

import re

MAX_SCORE = 5
# "Score: 4" or "**Score:** 4" / "**Score: 4**", and nothing else on the line; ASCII only.
_SCORE_LINE = re.compile(r"^(?:\*\*)?score:(?:\*\*)?[ \t]*(?P<value>[0-5])(?:\*\*)?\.?$", re.IGNORECASE | re.ASCII)
VERDICT_WORDS = re.compile(r"score|winner", re.IGNORECASE)


def final_line(text: str) -> str | None:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def copied_from(line: str, untrusted: list[str]) -> bool:
    """The judge's verdict line also appears in text under review that talks of verdicts: the
    judge may be echoing the answer rather than judging it, so the verdict is not trusted."""
    squash = lambda s: " ".join(s.lower().split())
    return any(VERDICT_WORDS.search(text) and squash(line) in squash(text) for text in untrusted)


def parse_score(judge_output: str, max_score: int = MAX_SCORE) -> int | None:
    """The score on the judge output's final non-empty line, or None."""
    line = final_line(judge_output)
    match = _SCORE_LINE.match(line) if line else None
    if match is None:
        return None
    score = int(match.group("value"))
    return score if score <= max_score else None


_WINNER_LINE = re.compile(r"^(?:\*\*)?winner:(?:\*\*)?[ \t]*(?P<label>[AB])(?:\*\*)?\.?$", re.IGNORECASE | re.ASCII)


def parse_winner(judge_output: str) -> str | None:
    """ "A" or "B" from the final non-empty line, else None."""
    line = final_line(judge_output)
    match = _WINNER_LINE.match(line) if line else None
    return match.group("label").upper() if match else None
