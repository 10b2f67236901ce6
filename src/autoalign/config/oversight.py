"""Scalable oversight settings: the routed critic (the `critic` feedback source) and the human
review queue its most uncertain items go to."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from autoalign.config.base import Section, existing_file
from autoalign.config.models import SamplingConfig

SIGNAL_NAMES = ("disagreement", "order_flip", "entropy")


class CriticConfig(Section):
    """The critic compares two of each prompt's samples, k times in each order (judges/critic.py),
    and its uncertainty routes the item: trust, a stronger critic (the teacher), or a person."""

    samples: int = Field(3, ge=1)
    """k sampled critiques per order (2k per item)."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=160)
    max_response_chars: int = Field(2000, gt=0)
    fewshot: bool = True
    """Show two worked comparisons before each critique (small critics need them for the format)."""
    signals: list[str] = Field(default_factory=lambda: list(SIGNAL_NAMES))
    """Which uncertainty signals are averaged into an item's uncertainty."""
    target_error: float = Field(0.15, ge=0, lt=1)
    """Trust the largest share of the calibration slice whose error rate stays within this."""
    calibration_file: str | None = None
    """Pairs with known truth: ranked rows {prompt, responses, scores|ranks} or EFT rows (data/ranked.py).
    None: verifier-labelled pairs, i.e. the student's answers to synthesised prompts with
    verifiable constraints (the `verifiable` section), where the IFEval checkers rank two answers."""
    calibration_pairs: int = Field(48, gt=0)
    """Size of the calibration slice per iteration."""
    human_share: float = Field(0.25, ge=0, le=1)
    """With a stronger critic, the most uncertain share of the items goes to a person (the rest
    above the trust threshold to the teacher); without one, everything not trusted does."""

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SIGNAL_NAMES))
        if unknown or not value:
            raise ValueError(f"signals must be a non-empty subset of {list(SIGNAL_NAMES)}, got {value}")
        return value

    @field_validator("calibration_file")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return existing_file(value)


class ReviewConfig(Section):
    """What the loop does with items routed to a person (review/queue.py, `autoalign review`)."""

    wait_for: Literal["continue", "quota"] = "continue"
    """continue: train on the trusted items now; answers given later become pairs in the next
    iteration. quota: wait until `quota` of this iteration's queued items are answered (serving the
    review app meanwhile when `serve`), and train on the answers in this iteration."""
    quota: int = Field(0, ge=0)
    """Answers to wait for; 0 = every item queued in this iteration."""
    weight: float = Field(1.0, gt=0)
    """Weight of a human pair in the DPO loss, relative to the source's other pairs."""
    serve: bool = True
    """wait_for=quota: serve the review app on 127.0.0.1 while waiting (its URL and token printed;
    the token is $AUTOALIGN_REVIEW_TOKEN when set, for scripted reviewers)."""
    port: int = Field(0, ge=0, le=65535)
    """The review app's port; 0 = a free one."""
    timeout_minutes: float | None = Field(None, gt=0)
    """wait_for=quota: go on with the answers given so far after this long; None = wait."""
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"serve", "port", "timeout_minutes"})
