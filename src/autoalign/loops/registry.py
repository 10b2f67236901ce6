"""Feedback sources by name, imported only when a recipe uses them (lm-evaluation-harness style):
each is one file with `make_pairs(ctx, t, student, prompts) -> list[Pair]`. A new kind of
feedback is a new file and one line here."""

from __future__ import annotations

import importlib
from collections.abc import Callable

FEEDBACK: dict[str, str] = {
    "self_reward": "autoalign.loops.self_reward",
    "teacher_reward": "autoalign.loops.teacher_reward",
    "teacher_demo": "autoalign.loops.teacher_demo",
    "gold_vs_sample": "autoalign.loops.gold_vs_sample",
}


def feedback(name: str) -> Callable:
    """The named source's make_pairs."""
    if name not in FEEDBACK:
        raise KeyError(f"unknown feedback source {name!r} (known: {', '.join(FEEDBACK)})")
    return importlib.import_module(FEEDBACK[name]).make_pairs
