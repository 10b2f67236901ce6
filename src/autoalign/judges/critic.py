"""An open-ended pairwise critic that measures how unsure it is.

For a prompt without a verifier, the critic writes a critique of two answers (what is wrong with
each, what would fix it) and ends with `Winner: A|B`. It is asked k times in each order (the
answers swapped), sampled, so its doubt shows in its own outputs instead of being assumed:

    disagreement  1 - |votes(first) - votes(second)| / 2k; an output without a verdict counts
                  against both, so a critic that cannot answer is unsure
    order_flip    |share of "first" among the straight order's verdicts - the same among the
                  swapped order's|: 1 when the critic picks a position, not an answer
    entropy       the mean binary entropy (bits) of P(A) vs P(B) at the verdict token, from the
                  backend's top log-probabilities (None when it returned none)

The verdict is the majority over all 2k outputs (no majority: no verdict). A reward model can be
the critic instead (`reward_verdict`): it scores each answer on its own, so it has no order to
flip, and its one signal is how close the Bradley-Terry probability of its verdict is to a coin:

    margin        1 - |2 sigmoid(r_first - r_second) - 1| = 1 - |tanh(margin / 2)|

routing.py turns the
signals into one uncertainty, calibrated on a slice whose truth is known, and routes the item.
As in judges/pairwise.py, only the final line counts, a verdict copied from an answer is not
trusted, and our fence tags inside the answers are neutralised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from autoalign.config import CriticConfig
from autoalign.data import BUILTIN_DIR
from autoalign.generation.base import Generator, SamplingParams, sampling_params
from autoalign.judges.pairwise import PairwiseItem, comparison_prompt, demonstration_turns, trusted_winner
from autoalign.judges.verdict_probs import label_distribution
from autoalign.prompts import template_digest
from autoalign.store import content_key, file_digest
from autoalign.types import Candidate

SIGNALS = ("disagreement", "order_flip", "entropy")
TEMPLATE = "critic_pairwise"


@dataclass(frozen=True)
class CriticVerdict:
    """The critic on one (first, second) pair: winner "first" / "second" or None (no majority),
    the critique of one output that agrees with it, the votes, the uncertainty signals."""

    winner: str | None
    critique: str
    votes: dict[str, int]
    signals: dict[str, float | None]
    raw: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> CriticVerdict:
        return cls(**row)


def binary_entropy(p: float) -> float:
    """In bits: 1 at p = 0.5, 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _as_side(letter: str | None, swapped: bool) -> str | None:
    """A letter of one order -> which answer it names ("first" was shown as A when not swapped)."""
    if letter is None:
        return None
    return "first" if (letter == "A") != swapped else "second"


def _share_first(sides: list[str | None]) -> float | None:
    parsed = [s for s in sides if s is not None]
    return sum(s == "first" for s in parsed) / len(parsed) if parsed else None


def verdict_from_outputs(straight: list[Candidate], swapped: list[Candidate], answers: list[str]) -> CriticVerdict:
    """Combine k outputs asked with (first=A, second=B) and k asked with the answers swapped."""
    errors = [c.error for c in straight + swapped if c.error]
    sides = {
        False: [_as_side(trusted_winner(c, answers), False) for c in straight],
        True: [_as_side(trusted_winner(c, answers), True) for c in swapped],
    }
    every = sides[False] + sides[True]
    votes = {"first": every.count("first"), "second": every.count("second"), "none": every.count(None)}
    winner = None
    if votes["first"] != votes["second"]:
        winner = "first" if votes["first"] > votes["second"] else "second"
    shares = [_share_first(sides[False]), _share_first(sides[True])]
    order_flip = 1.0 if None in shares else abs(shares[0] - shares[1])
    distributions = [label_distribution(c, ["A", "B"]) for c in straight + swapped if not c.error]
    entropies = [binary_entropy(d["A"]) for d in distributions if d is not None]
    signals = {
        "disagreement": 1.0 - abs(votes["first"] - votes["second"]) / max(1, len(every)),
        "order_flip": order_flip,
        "entropy": sum(entropies) / len(entropies) if entropies else None,
    }
    outputs = list(zip(straight, sides[False])) + list(zip(swapped, sides[True]))
    critique = next((c.text for c, side in outputs if winner and side == winner), "")
    return CriticVerdict(
        winner=winner,
        critique=critique,
        votes=votes,
        signals=signals,
        raw=[c.text for c in straight + swapped],
        error="; ".join(errors) or None,
    )


def margin_uncertainty(margin: float) -> float:
    """1 at a zero margin, towards 0 as the reward model grows sure (0.5 at |margin| = ln 3)."""
    return 1.0 - abs(math.tanh(margin / 2))


def reward_verdict(margin: float) -> CriticVerdict:
    """A reward model's verdict on (first, second) from its margin r(first) - r(second)."""
    winner = "first" if margin > 0 else "second" if margin < 0 else None
    critique = f"reward model margin {margin:+.2f}: prefers the {winner or 'neither'} answer"
    votes = {"first": int(margin > 0), "second": int(margin < 0), "none": int(margin == 0)}
    return CriticVerdict(winner, critique, votes, {"margin": margin_uncertainty(margin)})


class PairwiseCritic:
    def __init__(self, generator: Generator, sampling: SamplingParams, cfg: CriticConfig):
        self.generator = generator
        self.sampling = sampling
        self.max_response_chars = cfg.max_response_chars
        self.demonstrations = demonstration_turns(cfg.max_response_chars, TEMPLATE) if cfg.fewshot else []

    def review(self, items: list[PairwiseItem]) -> list[CriticVerdict]:
        requests = [
            [
                *self.demonstrations,
                {"role": "user", "content": comparison_prompt(item, swapped, self.max_response_chars, TEMPLATE)},
            ]
            for item in items
            for swapped in (False, True)
        ]
        outputs = self.generator.generate(requests, self.sampling) if requests else []
        return [
            verdict_from_outputs(outputs[2 * i], outputs[2 * i + 1], [item.first, item.second])
            for i, item in enumerate(items)
        ]


@dataclass(frozen=True)
class PairwiseCriticFactory:
    """Builds the critic on a model of the pool; key: the template and the demonstrations."""

    pool: Any
    TOP_LOGPROBS = 5

    @property
    def key(self) -> str:
        return content_key(template_digest(TEMPLATE), file_digest(BUILTIN_DIR / "pairwise_demos.jsonl"))

    def __call__(self, ref, cfg: CriticConfig, seed: int) -> PairwiseCritic:
        params = sampling_params(cfg.sampling, cfg.samples, seed, top_logprobs=self.TOP_LOGPROBS)
        return PairwiseCritic(self.pool.generator(ref, cfg.sampling.batch_size), params, cfg)
