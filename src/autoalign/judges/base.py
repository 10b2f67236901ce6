"""The judge contracts: structured inputs in, verdicts out; and the one factory protocol every
kind of judge is built by (rubric, pairwise, verifier, and later reward-model and critic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from autoalign.types import Judgment, Message


@dataclass(frozen=True)
class JudgeItem:
    prompt: list[Message]
    response: str
    reference: str | None = None


class Judge(Protocol):
    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        """One Judgment per item, in order; a failed parse gives score None, never 0."""
        ...


JudgeT = TypeVar("JudgeT", covariant=True)


class JudgeFactory(Protocol[JudgeT]):
    """Builds a judge for a model (a runtime ModelRef or EndpointRef), from the recipe's judge
    settings and a seed, only when a stage has work to do (a finished stage loads no model).

    key: everything else the verdicts depend on (the templates' text, demonstrations, the
    verifier's data); it is part of the key of every stage that uses the judge."""

    key: str
    kind: str
    """What judges: "rubric", "pairwise", "verifier" (a program), later "reward_model", "critic";
    recorded with the verdicts, so summaries name the judge rightly."""

    def __call__(self, ref: Any, cfg: Any, seed: int) -> JudgeT: ...
