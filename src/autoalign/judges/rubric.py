"""LLM-as-a-judge with the additive 5-point rubric (Yuan et al. 2024, "Self-Rewarding Language
Models", figure 2), pointwise: one judge call per (prompt, response), k samples averaged.

Parsing is strict and looks only at the judge's own generated text: the verdict is the judge's
*final* non-empty line, which must read `Score: N` with N a whole number 0..5. Anything else
(no score line, a score out of range, output cut off mid-justification) is None and counted.
Earlier `Score:` lines are ignored (a running tally, or text quoted from the response under
review, cannot decide the verdict); the prompt itself is never parsed.
"""

from __future__ import annotations

import re
from statistics import mean

from autoalign.generation.base import Generator, SamplingParams
from autoalign.judges.base import JudgeItem
from autoalign.prompts import render
from autoalign.types import Judgment, Message

MAX_SCORE = 5
# "Score: 4", "**Score:** 4", "Final score: 4/5", "Score = 4 points." -- one line, nothing else on it.
_SCORE_LINE = re.compile(
    r"^[\s*#_>`-]*(?:total\s+|final\s+|overall\s+)?score[\s*_]*[:=][\s*_]*"
    r"(?P<value>[+-]?\d+(?:\.\d+)?)"
    r"[\s*_]*(?:/\s*5|out\s+of\s+5|points?)?[\s*_.!`]*$",
    re.IGNORECASE,
)


def parse_score(judge_output: str, max_score: int = MAX_SCORE) -> int | None:
    """The score on the judge output's final non-empty line, or None."""
    lines = [line for line in judge_output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    match = _SCORE_LINE.match(lines[-1].strip())
    if match is None:
        return None
    value = match.group("value")
    if not value.lstrip("+-").isdigit():
        return None  # the rubric only awards whole points
    score = int(value)
    return score if 0 <= score <= max_score else None


def judge_prompt(item: JudgeItem, max_response_chars: int) -> str:
    response = item.response
    if len(response) > max_response_chars:
        response = response[:max_response_chars] + " [...]"
    return render("judge_rubric", instruction=item.prompt[-1]["content"], response=response)


class RubricJudge:
    """demonstrations: earlier chat turns (rubric prompt, judgement) shown before each verdict.
    They are the same for every item, so the generator prefills them once per batch."""

    def __init__(self, generator: Generator, sampling: SamplingParams, samples: int = 1, max_response_chars: int = 2000, demonstrations: list[Message] | None = None):
        if samples > 1 and sampling.temperature == 0:
            raise ValueError("averaging k > 1 judge samples needs judge temperature > 0 (greedy samples are identical)")
        self.generator = generator
        self.sampling = SamplingParams(**{**sampling.to_dict(), "n": samples})
        self.max_response_chars = max_response_chars
        self.demonstrations = list(demonstrations or [])

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        requests = [[*self.demonstrations, {"role": "user", "content": judge_prompt(item, self.max_response_chars)}] for item in items]
        outputs = self.generator.generate(requests, self.sampling)
        return [judgment_from_outputs([c.text for c in cands]) for cands in outputs]


def judgment_from_outputs(outputs: list[str]) -> Judgment:
    scores = [parse_score(text) for text in outputs]
    valid = [s for s in scores if s is not None]
    return Judgment(
        score=mean(valid) if valid else None,
        raw=outputs,
        parsed=bool(valid),
        samples=scores,
        confidence=len(valid) / len(scores),
    )
