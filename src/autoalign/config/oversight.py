"""Scalable oversight settings: the routed critic (the `critic` feedback source) and the human
review queue its most uncertain items go to."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from autoalign.config.base import Section, existing_file
from autoalign.config.models import SamplingConfig
from autoalign.config.training import TrainConfig

PAIRWISE_SIGNALS = ("disagreement", "order_flip", "entropy")
REWARD_MODEL_SIGNALS = ("margin",)
SIGNAL_NAMES = PAIRWISE_SIGNALS + REWARD_MODEL_SIGNALS


class RewardCriticConfig(Section):
    """critic.kind=reward_model: a Bradley-Terry reward model trained, each iteration, on pairs
    whose truth is known (the calibration source's other prompts: none is in the slice)."""

    base: str | None = None
    """Its base model (a bundled name or a local directory); None = the run's model."""
    train_pairs: int = Field(192, gt=0)
    train: TrainConfig = TrainConfig(
        learning_rate=2e-5, epochs=1, batch_size=4, grad_accum=2, max_length=384, warmup_ratio=0.1
    )


class CriticConfig(Section):
    """The critic compares two of each prompt's samples and its uncertainty routes the item:
    trust, a stronger critic (the teacher), or a person. kind=pairwise: the model critiques the
    pair k times in each order (judges/critic.py); kind=reward_model: a reward model trained on
    labelled pairs scores both answers, and its uncertainty is how small the margin is."""

    kind: Literal["pairwise", "reward_model"] = "pairwise"
    reward_model: RewardCriticConfig = RewardCriticConfig()
    samples: int = Field(3, ge=1)
    """k sampled critiques per order (2k per item)."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=160)
    max_response_chars: int = Field(2000, gt=0)
    fewshot: bool = True
    """Show two worked comparisons before each critique (small critics need them for the format)."""
    signals: list[str] = Field(default_factory=lambda: list(PAIRWISE_SIGNALS))
    """Which uncertainty signals are averaged into an item's uncertainty (kind=reward_model: margin)."""
    target_error: float = Field(0.15, ge=0, lt=1)
    """Trust the largest share of the calibration slice whose error rate stays within this."""
    trust_bound: Literal["point", "upper"] = "point"
    """point: the trusted share's error on the slice is within target_error; upper: its exact 95%
    upper bound is (a guarantee for new items with ~97.5% confidence; trusts fewer)."""
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

    @model_validator(mode="after")
    def _signals_of_the_kind(self) -> CriticConfig:
        """A reward-model critic has one signal, its margin; a pairwise critic has the other three."""
        own = REWARD_MODEL_SIGNALS if self.kind == "reward_model" else PAIRWISE_SIGNALS
        if self.kind == "reward_model" and self.signals == list(PAIRWISE_SIGNALS):  # the default: this kind's
            object.__setattr__(self, "signals", list(REWARD_MODEL_SIGNALS))
        foreign = sorted(set(self.signals) - set(own))
        if foreign:
            raise ValueError(f"critic.kind={self.kind} measures the signals {list(own)}, not {foreign}")
        return self

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


class W2SConfig(Section):
    """`autoalign w2s`: weak-to-strong generalisation on comparisons whose truth a verifier knows
    (loops/w2s.py). The comparisons are two of the run model's answers to a synthesised
    verifiable prompt (the `verifiable` and `sample` sections) that the IFEval checkers score
    differently."""

    weak: Literal["judge", "reward_model"] = "judge"
    """The weak supervisor: the run's model (`model`) as a pairwise judge (the `judge` section,
    both orders), or weak_model trained as a reward model on the true labels of its own split."""
    weak_model: str = "smollm2-135m-instruct"
    """weak=reward_model: the weak reward model's base (a bundled name or a local directory)."""
    strong_model: str = "gemma-3-270m"
    """The strong student's base, trained as a reward model on the weak labels and, for the
    ceiling, on the true ones."""
    train_pairs: int = Field(128, gt=0)
    """Comparisons the strong student trains on."""
    weak_train_pairs: int = Field(128, gt=0)
    """weak=reward_model: comparisons the weak reward model trains on (a split of their own)."""
    test_pairs: int = Field(160, gt=0)
    confidence_alpha: float = Field(0.5, ge=0, le=1)
    """Also train the strong student with Burns et al.'s auxiliary confidence loss at this weight
    (0: not)."""
    train: TrainConfig = TrainConfig(
        learning_rate=2e-5, epochs=2, batch_size=4, grad_accum=2, max_length=384, warmup_ratio=0.1
    )
    bootstrap: int = Field(2000, ge=100)
    """Resamples of the test items for the PGR interval."""
