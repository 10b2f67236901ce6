"""Verifiable prompts: a base task plus 1-3 sampled constraints (synth/constraints.py), as
IFEval-format rows, so the IFEval checkers verify every answer.

Base tasks: the bundled writing tasks (every form x topic in data/base_tasks.yaml), the IFT seed
prompts, and any instruction file the user gives. Synthesis is deterministic under the seed.
A prompt too similar to an evaluation prompt (ROUGE-L F1 over words above a threshold, against
all 541 IFEval prompts and the held-out prompts) is dropped and counted: evaluation prompts are
never training prompts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from string import Template
from typing import NamedTuple

import yaml

from autoalign.synth.constraints import sample_constraints
from autoalign.synth.instructions import _overlap_bound, rouge_l_f1, words
from autoalign.verifiers.ifeval import IFEvalPrompt


class Task(NamedTuple):
    text: str
    kind: str
    """What sort of task (poem, letter, question, ...): the attacker tracks failures per kind."""


def bundled_tasks() -> list[Task]:
    spec = yaml.safe_load(files("autoalign.data").joinpath("base_tasks.yaml").read_text(encoding="utf-8"))
    return [
        Task(Template(form).substitute(topic=t), kind) for kind, form in spec["forms"].items() for t in spec["topics"]
    ]


class EvaluationFilter:
    """Is a text too similar to any evaluation prompt? (ROUGE-L F1 over lowercased words; the
    unigram-overlap bound skips most of the LCS work.)"""

    def __init__(self, evaluation_texts: list[str], threshold: float = 0.6):
        self.threshold = threshold
        self.bags = [(toks, Counter(toks)) for toks in (words(t) for t in evaluation_texts) if toks]

    def too_similar(self, text: str) -> bool:
        toks = words(text)
        bag = Counter(toks)
        for other, other_bag in self.bags:
            if _overlap_bound(bag, other_bag, len(toks), len(other)) <= self.threshold:
                continue
            if rouge_l_f1(toks, other) > self.threshold:
                return True
        return False


@dataclass
class Synthesis:
    rows: list[IFEvalPrompt]
    dropped: Counter = field(default_factory=Counter)
    kinds: list[str] = field(default_factory=list)
    """The task kind of each row."""
    tasks: list[str] = field(default_factory=list)
    """The base task of each row (its prompt without the constraints)."""


def synthesize(
    tasks: list[Task],
    count: int,
    seed: int,
    evaluation: EvaluationFilter,
    allowed_ids: list[str] | None = None,
    max_constraints: int = 3,
    key_prefix: str = "syn",
    weights_for: Callable[[random.Random, str], dict[str, float] | None] = lambda rng, kind: None,
) -> Synthesis:
    """`count` distinct verifiable prompts (fewer if the tasks run out of new combinations).
    weights_for(rng, task kind): how likely each constraint type is drawn (the attacker's)."""
    rng = random.Random(seed)
    out, seen, dropped, kinds, base = [], set(), Counter(), [], []
    task_ok: dict[str, bool] = {}
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        task, kind = rng.choice(tasks)
        if task not in task_ok:
            task_ok[task] = not evaluation.too_similar(task)
        if not task_ok[task]:
            dropped["task_like_evaluation_prompt"] += 1
            continue
        count_here = rng.randint(1, max_constraints)
        constraints = sample_constraints(rng, task, count_here, allowed_ids, weights_for(rng, kind))
        if not constraints:
            dropped["no_compatible_constraint"] += 1
            continue
        joiner = rng.choice([" ", "\n"])
        prompt = task + joiner + " ".join(c.text for c in constraints)
        if prompt in seen:
            dropped["duplicate"] += 1
            continue
        if evaluation.too_similar(prompt):
            dropped["like_evaluation_prompt"] += 1
            continue
        seen.add(prompt)
        kinds.append(kind)
        base.append(task)
        out.append(
            IFEvalPrompt(
                key=f"{key_prefix}-{len(out):05d}",
                prompt=prompt,
                instruction_ids=[c.instruction_id for c in constraints],
                kwargs=[c.kwargs for c in constraints],
            )
        )
    return Synthesis(out, dropped, kinds, base)
