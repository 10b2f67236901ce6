"""Registries: name -> where the implementation lives, imported only when a recipe uses it
(lm-evaluation-harness style), plus what the config must know about it before anything loads.
Adding an implementation is a new file and one entry here; nothing else names it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class FeedbackEntry:
    """A feedback source: a module with `make_pairs(ctx, t, student, prompts) -> list[Pair]`."""

    module: str
    needs_teacher: bool = False
    min_samples: int = 1
    """sample.n the source needs (best vs worst of the samples needs 2)."""
    uses_created_prompts: bool = True
    """False when the source brings its own prompts (gold_vs_sample): the loop then writes none."""
    prompt_file_setting: str | None = None
    """The recipe setting (dotted) naming the conversations whose prompts the source has the
    student answer; they are checked before the run starts (they must fit the context)."""


FEEDBACK: dict[str, FeedbackEntry] = {
    "self_reward": FeedbackEntry("autoalign.loops.self_reward", min_samples=2),
    "teacher_reward": FeedbackEntry("autoalign.loops.teacher_reward", needs_teacher=True, min_samples=2),
    "teacher_demo": FeedbackEntry("autoalign.loops.teacher_demo", needs_teacher=True),
    "gold_vs_sample": FeedbackEntry(
        "autoalign.loops.gold_vs_sample", uses_created_prompts=False, prompt_file_setting="gold.file"
    ),
}


def feedback_source(name: str) -> ModuleType:
    if name not in FEEDBACK:
        raise KeyError(f"unknown feedback source {name!r} (known: {', '.join(FEEDBACK)})")
    return importlib.import_module(FEEDBACK[name].module)


PREFERENCE_LOSSES: dict[str, str] = {
    "dpo": "autoalign.train.losses.dpo:DPOLoss",
}
"""Preference losses (train/losses/): name -> "module:class", the class built with beta and
following train.losses.PreferenceLoss."""


VERIFIERS: dict[str, str] = {
    "ifeval": "autoalign.judges.verifier:from_config",
}
"""Programs that judge the feedback instead of a model (judge.verifier): name -> "module:function",
called as function(judge_config) and returning a judges.base.JudgeFactory."""


BACKENDS: dict[str, str] = {
    "transformers": "autoalign.generation.hf:in_process",
}
"""Generation backends for in-process models (model.backend): name -> "module:function", called
as function(pool, model_ref, batch_size) and returning a generation.base.Generator. Models behind
an OpenAI-compatible endpoint always use the HTTP backend (generation/openai.py)."""


def load_attr(spec: str):
    """ "package.module:name" -> the object, importing the module only now."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)
