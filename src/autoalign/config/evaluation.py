"""What each iteration's evaluation runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

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
