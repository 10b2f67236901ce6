"""Best-of-N sampling: draw N answers, keep the one the scorer rates highest.

Nakano et al., "WebGPT" (2021), and Stiennon et al., "Learning to summarize from human feedback"
(2020), use it as the inference-time baseline RL has to beat; Gao et al., "Scaling Laws for
Reward Model Overoptimization" (2022), study its gain against N. The scorer is any Judge: the
rubric judge, a reward model (judge.reward_model) or a program (judge.verifier). A verdict that
did not parse never wins over one that did.

The quality curve against N is measured without drawing fresh samples for every N: from M >= N
answers per prompt, `expected_best_of_n` gives the exact mean, over every N-subset of the M, of
the picked answer's value (pass@k's unbiased estimator, Chen et al. 2021, extended from "any
correct" to "the top-scored one's value").

    autoalign generate --model smollm2-135m --input prompts.jsonl --output best.jsonl \
        --best-of 8 --select verifier
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from autoalign.generation.base import Generator, SamplingParams
from autoalign.judges.base import Judge, JudgeItem
from autoalign.types import Candidate, Message

UNSCORED = float("-inf")
"""The rank of an answer whose verdict did not parse: below every parsed score."""


@dataclass(frozen=True)
class BestOfN:
    """One prompt's N answers, their scores (None: the verdict did not parse) and the pick."""

    candidates: list[Candidate]
    scores: list[float | None]
    best: int

    @property
    def answer(self) -> Candidate:
        return self.candidates[self.best]

    def to_dict(self) -> dict:
        return {"candidates": [c.to_dict() for c in self.candidates], "scores": self.scores, "best": self.best}


def pick_best(scores: list[float | None]) -> int:
    """The index of the highest score, the first one on ties; unparsed verdicts rank last (all
    unparsed: the first answer, as plain sampling would have returned)."""
    ranks = [UNSCORED if s is None else s for s in scores]
    return max(range(len(ranks)), key=lambda i: (ranks[i], -i))


def best_of_n(
    generator: Generator, judge: Judge, requests: list[list[Message]], params: SamplingParams
) -> list[BestOfN]:
    """params.n answers per request, every one judged, the best kept."""
    groups = generator.generate(requests, params)
    items = [JudgeItem(prompt=req, response=c.text) for req, group in zip(requests, groups) for c in group]
    verdicts = iter(judge.judge(items))
    out = []
    for group in groups:
        scores = [next(verdicts).score for _ in group]
        out.append(BestOfN(candidates=group, scores=scores, best=pick_best(scores)))
    return out


def expected_best_of_n(values: list[float], scores: list[float | None], n: int) -> float:
    """The mean value of the answer best-of-n picks, over every n-subset of these M answers.

    Sort the answers by score into tie groups, best first. A subset's pick lies in group g when it
    holds none of the `above` answers ranked higher and at least one of g's:
        P(g) = [C(M - above, n) - C(M - above - |g|, n)] / C(M, n).
    Within g the pick is equally likely any member (ties broken at random), so its expected
    value is g's mean; the answer is sum_g P(g) mean(g). n = 1 gives the plain mean, n = M the
    best group's mean."""
    if len(values) != len(scores):
        raise ValueError(f"{len(values)} values but {len(scores)} scores")
    m = len(values)
    if not 1 <= n <= m:
        raise ValueError(f"best-of-{n} needs 1 <= n <= {m} answers")
    groups: dict[float, list[float]] = {}
    for value, score in zip(values, scores):
        groups.setdefault(UNSCORED if score is None else score, []).append(value)
    total, above = 0.0, 0
    for score in sorted(groups, reverse=True):
        members = groups[score]
        chance = (comb(m - above, n) - comb(m - above - len(members), n)) / comb(m, n)
        total += chance * sum(members) / len(members)
        above += len(members)
    return total
