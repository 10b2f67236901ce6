"""The Judge contract: structured inputs in, Judgments (score, raw output, parsed flag) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
