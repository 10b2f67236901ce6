"""The data a run reads: seed IFT/EFT and the held-out prompts."""

from __future__ import annotations

from pydantic import field_validator

from autoalign.config.base import Section, existing_file


class DataConfig(Section):
    ift: str = "builtin:seed_ift.jsonl"
    """IFT seed: JSONL/Parquet of {messages} or {prompt, response}; or builtin:NAME."""
    eft: str | None = "builtin:seed_eft.jsonl"
    heldout: str = "builtin:heldout_prompts.jsonl"
    """Held-out prompts for evaluation: {prompt} or {messages} rows."""

    @field_validator("ift", "eft", "heldout")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return existing_file(value)
