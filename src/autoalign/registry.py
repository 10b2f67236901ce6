"""Registries: name -> where the implementation lives, imported only when a recipe uses it
(lm-evaluation-harness style), plus what the config must know about it before anything loads.
Adding an implementation is a new file and one entry here; nothing else names it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from collections.abc import Callable


@dataclass(frozen=True)
class FeedbackEntry:
    """A feedback source: a function `(ctx, t, student, prompts) -> list[Pair]` in a module."""

    module: str
    function: str = "make_pairs"
    needs_teacher: bool = False
    min_samples: int = 1
    """sample.n the source needs (best vs worst of the samples needs 2)."""
    uses_created_prompts: bool = True
    """False when the source brings its own prompts (gold_vs_sample): the loop then writes none."""
    prompt_file_setting: str | None = None
    """The recipe setting (dotted) naming the conversations whose prompts the source has the
    student answer; they are checked before the run starts (they must fit the context)."""
    check_config: str | None = None
    """ "module:function" called with the RunConfig before the run starts, raising ConfigError
    on settings of this source that a schema cannot check alone."""


FEEDBACK: dict[str, FeedbackEntry] = {
    "self_reward": FeedbackEntry("autoalign.loops.self_reward", min_samples=2),
    "teacher_reward": FeedbackEntry("autoalign.loops.teacher_reward", needs_teacher=True, min_samples=2),
    "teacher_demo": FeedbackEntry("autoalign.loops.teacher_demo", needs_teacher=True),
    "verified_samples": FeedbackEntry(
        "autoalign.loops.verified",
        "sampled",
        min_samples=2,
        uses_created_prompts=False,
        check_config="autoalign.loops.verified:check_config",
    ),
    "verified_repair": FeedbackEntry(
        "autoalign.loops.verified",
        "repaired",
        uses_created_prompts=False,
        check_config="autoalign.loops.verified:check_config",
    ),
    "verified_refine": FeedbackEntry(
        "autoalign.loops.verified",
        "refined",
        uses_created_prompts=False,
        check_config="autoalign.loops.verified:check_config",
    ),
    "critic": FeedbackEntry(
        "autoalign.loops.critic", min_samples=2, check_config="autoalign.loops.critic:check_config"
    ),
    "constitutional": FeedbackEntry(
        "autoalign.loops.constitutional", check_config="autoalign.loops.constitutional:check_config"
    ),
    "self_consistency": FeedbackEntry("autoalign.loops.self_consistency", min_samples=3),
    "self_refine": FeedbackEntry("autoalign.loops.self_refine"),
    "debate": FeedbackEntry("autoalign.loops.debate", min_samples=2),
    "gold_vs_sample": FeedbackEntry(
        "autoalign.loops.gold_vs_sample", uses_created_prompts=False, prompt_file_setting="gold.file"
    ),
}


def feedback_source(name: str) -> Callable:
    """The source's pair-making function, imported now."""
    if name not in FEEDBACK:
        raise KeyError(f"unknown feedback source {name!r} (known: {', '.join(FEEDBACK)})")
    entry = FEEDBACK[name]
    return getattr(importlib.import_module(entry.module), entry.function)


PREFERENCE_LOSSES: dict[str, str] = {
    "dpo": "autoalign.train.losses.dpo:DPOLoss",
    "sigmoid": "autoalign.train.losses.dpo:DPOLoss",
    "cdpo": "autoalign.train.losses.dpo:ConservativeDPOLoss",
    "robust": "autoalign.train.losses.dpo:RobustDPOLoss",
    "ipo": "autoalign.train.losses.dpo:IPOLoss",
    "slic": "autoalign.train.losses.reference_free:SLiCLoss",
    "simpo": "autoalign.train.losses.reference_free:SimPOLoss",
    "orpo": "autoalign.train.losses.reference_free:ORPOLoss",
    "kto": "autoalign.train.losses.kto:KTOLoss",
    "rrhf": "autoalign.train.losses.ranking:RRHFLoss",
    "pro": "autoalign.train.losses.ranking:PROLoss",
    "coh": "autoalign.train.hindsight:ChainOfHindsight",
}
"""Preference losses (train/losses/): name -> "module:class", the class built with the dpo section's
settings its fields name and following train.losses.PreferenceLoss (or its kind's protocol)."""


VERIFIERS: dict[str, str] = {
    "ifeval": "autoalign.judges.verifier:from_config",
}
"""Programs that judge the feedback instead of a model (judge.verifier): name -> "module:function",
called as function(judge_config) and returning a judges.base.JudgeFactory."""


BACKENDS: dict[str, str] = {
    "transformers": "autoalign.generation.hf:in_process",
    "llamacpp": "autoalign.engines.llamacpp:managed",
    "vllm": "autoalign.engines.vllm:managed",
}
"""Generation backends for in-process models (model.backend): name -> "module:function", called
as function(pool, model_ref, batch_size) and returning a generation.base.Generator. Models behind
an OpenAI-compatible endpoint always use the HTTP backend (generation/openai.py)."""
SERVER_BACKENDS = frozenset({"llamacpp", "vllm"})
"""Backends that serve the model from another process: their generators take concurrent calls."""


def load_attr(spec: str):
    """ "package.module:name" -> the object, importing the module only now."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)
