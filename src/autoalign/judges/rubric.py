"""LLM-as-a-judge with the additive 5-point rubric (Yuan et al. 2024, "Self-Rewarding Language
Models", figure 2), pointwise: one judge call per (prompt, response), k samples averaged.

Parsing is strict and looks only at the judge's own generated text: the verdict is the judge's
*final* non-empty line, which must read `Score: N` with N a whole number 0..5. Anything else
(no score line, a score out of range, output cut off mid-justification) is None and counted.
Earlier `Score:` lines are ignored (a running tally, or text quoted from the response under
review, cannot decide the verdict); the prompt itself is never parsed.

With use_logprobs and a backend that returns top-k token log-probabilities, a parsed verdict's
score is the expected score under the judge's distribution over 0..5 at the verdict token
(judges/verdict_probs.py) instead of the integer it wrote.
"""

from __future__ import annotations

import re
from statistics import mean

from autoalign.generation.base import Generator, SamplingParams
from autoalign.judges.base import JudgeItem
from autoalign.judges.verdict_probs import expected_score
from autoalign.prompts import render
from autoalign.types import Candidate, Judgment, Message

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

    LOGPROB_ALTERNATIVES = 10  # enough to see all six score digits and their spacing variants

    def __init__(
        self,
        generator: Generator,
        sampling: SamplingParams,
        samples: int = 1,
        max_response_chars: int = 2000,
        demonstrations: list[Message] | None = None,
        use_logprobs: bool = False,
    ):
        if samples > 1 and sampling.temperature == 0:
            raise ValueError("averaging k > 1 judge samples needs judge temperature > 0 (greedy samples are identical)")
        self.generator = generator
        top = self.LOGPROB_ALTERNATIVES if use_logprobs else 0
        self.sampling = SamplingParams(**{**sampling.to_dict(), "n": samples, "top_logprobs": top})
        self.max_response_chars = max_response_chars
        self.demonstrations = list(demonstrations or [])

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        requests = [[*self.demonstrations, {"role": "user", "content": judge_prompt(item, self.max_response_chars)}] for item in items]
        outputs = self.generator.generate(requests, self.sampling)
        return [judgment_from_outputs(cands) for cands in outputs]


def judgment_from_outputs(outputs: list[Candidate]) -> Judgment:
    """k judge samples -> one Judgment: the mean over the samples that parsed (each the expected
    score when log-probabilities are there, else the integer written); confidence = the share
    of samples that parsed."""
    scores = [parse_score(c.text) for c in outputs]
    values = []
    for c, score in zip(outputs, scores):
        if score is not None:
            expected = expected_score(c)
            values.append(expected if expected is not None else score)
    errors = [c.error for c in outputs if c.error]
    return Judgment(
        score=mean(values) if values else None,
        raw=[c.text for c in outputs],
        parsed=bool(values),
        samples=scores,
        confidence=len(values) / len(scores),
        error="; ".join(errors) if errors and not values else None,
    )
