"""What each iteration's evaluation runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from autoalign.config.base import Section, existing_file
from autoalign.config.models import SamplingConfig


class EvalConfig(Section):
    enabled: bool = True
    num_prompts: int = Field(16, gt=0)
    judge: Literal["initial", "previous", "teacher"] = "initial"
    """Which model judges the comparison: "initial" = M1, the loop's first model (M0 after SFT, or
    M0 itself when SFT is off), fixed across iterations so scores stay comparable; "previous" =
    the iterate M_t being compared against; "teacher" = the recipe's teacher."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.0)
    pairwise: bool = True
    """Also compare the two models' answers head to head: the judge picks the better answer,
    asked in both orders (win/tie/loss, order consistency, win rate, length-controlled win rate)."""
    ifeval_prompts: int = Field(0, ge=0)
    """Verifiable instruction following on the first N prompts of ifeval_file, for both models
    (0 = off; the full bundled set is 541 prompts)."""
    ifeval_final_prompts: int = Field(0, ge=0)
    """The loop's last model and M1 also on the first N prompts of ifeval_file (e.g. all 541),
    compared paired: the run's verdict against where it started. 0 = off (with ifeval_prompts
    and several iterations, the last model is still compared with M1 on that slice)."""
    ifeval_file: str = "builtin:ifeval_input_data.jsonl"
    ifeval_sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=384)
    reward_data: str | None = None
    """Prompts with ranked responses (see data/ranked.py): how well each new model judges,
    against the gold ranking (pairwise accuracy, Spearman, Kendall tau...). None = off."""
    reward_pool: bool = False
    """Rank all reward_data responses against each other (for files with one response per prompt)."""

    @field_validator("ifeval_file", "reward_data")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return existing_file(value)


INFERENCE_METHODS = {
    "plain": "one sample (the baseline the others are compared with)",
    "greedy": "the temperature-0 answer",
    "best_of_n_verifier": "best of n samples by the IFEval checkers of each prompt (a test-time oracle)",
    "best_of_n_judge": "best of n samples by the recipe's judge (judge.*)",
    "self_consistency": "the first answer of the largest cluster of n samples (consistency.*)",
    "self_refine": "the first sample, refined from the model's own feedback, best round by the judge (self_refine.*)",
    "self_refine_verifier": "refined from the IFEval checkers' evidence, best round by them (a test-time oracle)",
    "constitutional": "the first sample, critiqued against a drawn principle and revised (constitution.*)",
    "urial": "one sample after a preamble and demonstrations (inference_time.urial)",
    "debate": "the first two samples debated (debate.*), the judge's pick",
}
"""loop=inference_time: name -> what answers a prompt. Oracle methods read the evaluation's own
checks, so they measure what a verifier could pick, not a model that aligns itself."""
ORACLE_METHODS = frozenset({"best_of_n_verifier", "self_refine_verifier"})
MULTI_SAMPLE_METHODS = frozenset({"best_of_n_verifier", "best_of_n_judge", "self_consistency", "debate"})
INFERENCE_TABLE = "inference_time.json"
"""Where loop=inference_time writes its table, in the run directory (the summary and report read it)."""


class InferenceTimeConfig(Section):
    """loop=inference_time: no training; every method answers the same first `prompts` IFEval
    prompts with the initial model (M1), each scored by the IFEval checkers, paired against the
    baseline method, and judged head to head against it on the first `head_to_head_prompts`, with
    the tokens and seconds each method spent per prompt."""

    methods: list[str] = list(INFERENCE_METHODS)
    baseline: str = "plain"
    prompts: int = Field(100, gt=0)
    head_to_head_prompts: int = Field(50, ge=0)
    """0 = no head-to-head judging."""
    n: int = Field(4, ge=1)
    """Samples per prompt, drawn once and shared: plain is the first, best-of-N and
    self-consistency use all n (at least 2), debate the first two, refinement methods start
    from the first."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.8, top_p=0.95, max_new_tokens=256, batch_size=32)
    urial: str = "builtin:urial.yaml"
    base_methods: list[str] = []
    """Methods also run on M0, the model before SFT (labelled base:<method>), against the same
    baseline: e.g. [plain, urial] to compare in-context alignment of a base model with its SFT."""

    @field_validator("methods", "base_methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in INFERENCE_METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(INFERENCE_METHODS)})")
        if len(set(value)) != len(value):
            raise ValueError("a method is listed twice")
        return value

    @field_validator("urial")
    @classmethod
    def _urial_exists(cls, value: str) -> str:
        return existing_file(value)

    @model_validator(mode="after")
    def _baseline_listed(self) -> InferenceTimeConfig:
        if self.baseline not in self.methods:
            raise ValueError(f"baseline {self.baseline!r} must be one of methods")
        choosing = sorted(set(self.methods + self.base_methods) & MULTI_SAMPLE_METHODS)
        if choosing and self.n < 2:
            raise ValueError(f"{', '.join(choosing)} choose among samples: inference_time.n must be >= 2")
        return self
