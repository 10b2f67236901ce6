"""Verifiable-instruction feedback: the learner answers synthesised prompts with verifiable
constraints, a programmatic critic (the IFEval checkers plus a quality guard) judges every answer,
and two kinds of pairs come out, as separate sources so a recipe weights or ablates each:

    prompts    = base task x 1-3 constraints (synth/verifiable.py), new ones every iteration,
                 never a held-out constraint type, never like an evaluation prompt
    candidates = N samples per prompt from M_t (+ its greedy answer: verifiable.greedy_candidate)
    critiques  = per constraint followed or not; score 5 x share followed, 0 if degenerate
                 (empty, cut off, looping; off-task: verifiable.off_task_check)
    verified_samples: best vs worst sample by the critic (rejection sampling)
    verified_repair:  a failing answer repaired deterministically > the answer itself, the
                      minimal-difference pair (SPaR, Cheng et al. 2024, "SPaR: Self-Play with
                      Tree-Search Refinement to Improve Instruction-Following in LLMs")
    verified_refine:  M_t rewrites a failing answer given the critic's list of unmet constraints;
                      a rewrite the critic passes in full > the answer itself (as in SPaR, with a
                      program in place of the judge)

The superalignment framework's attacker/learner/critic loop on verifiable instructions: from
the second iteration on, the attacker draws constraint types where the learner failed before
(synth/attacker.py).
Run it:  autoalign run recipes/verifiable_if_small.yaml
"""

from __future__ import annotations

from autoalign.config import ConfigError, RunConfig
from autoalign.data import load_prompts
from autoalign.loops.context import RunContext
from autoalign.runtime.pool import ModelRef
from autoalign.stages.sampling import sample_candidates
from autoalign.stages.verifiable import (
    as_prompts,
    critique_candidates,
    refine_candidates,
    refine_pairs,
    repair_pairs,
    sampled_pairs,
    verifiable_prompts,
)
from autoalign.store import recorded_stages
from autoalign.synth.attacker import WeaknessMap
from autoalign.synth.constraints import SAMPLERS
from autoalign.synth.verifiable import Task, bundled_tasks
from autoalign.types import Pair, Prompt
from autoalign.verifiers.ifeval import load_ifeval


def check_config(cfg: RunConfig) -> None:
    unknown = sorted(set(cfg.verifiable.held_out) - set(SAMPLERS))
    if unknown:
        raise ConfigError(
            f"verifiable.held_out: unknown constraint type(s) {unknown} (known: the IFEval instruction ids)"
        )
    if cfg.verifiable.task_file:  # read now, before the run directory exists
        load_prompts(cfg.verifiable.task_file)


def base_tasks(ctx: RunContext) -> list[Task]:
    """The bundled writing tasks, the IFT seed prompts (kind "question") and the user's file ("user")."""
    task_file = ctx.cfg.verifiable.task_file
    extra = [Task(p.text, "user") for p in load_prompts(task_file)] if task_file else []
    return sorted(set(bundled_tasks() + [Task(text, "question") for text in ctx.seed_instructions] + extra))


def weakness_before(ctx: RunContext, t: int) -> WeaknessMap | None:
    """What the critic found in every earlier iteration (None in the first, or with the attacker off)."""
    if not ctx.cfg.verifiable.attacker or t == 1:
        return None
    weakness = WeaknessMap()
    for s in range(1, t):
        prompts = recorded_stages(ctx.shared.root, s, "verifiable_prompts")
        critiques = recorded_stages(ctx.shared.root, s, "critiques")
        if prompts and critiques:
            weakness = weakness.merged(WeaknessMap.from_rows(prompts[0].rows(), critiques[0].rows()))
    return weakness


def evaluation_texts(ctx: RunContext) -> list[str]:
    """Every IFEval prompt (all are evaluation-only), the recipe's IFEval file, and the held-out prompts."""
    texts = {item.prompt for item in load_ifeval("builtin:ifeval_input_data.jsonl")}
    texts |= {item.prompt for item in load_ifeval(ctx.cfg.eval.ifeval_file)}
    return sorted(texts | {p.text for p in ctx.heldout})


def judged(ctx: RunContext, t: int, student: ModelRef):
    at, cfg = ctx.at(t, shared=True), ctx.cfg.verifiable
    items, kinds, tasks = verifiable_prompts(at, cfg, base_tasks(ctx), evaluation_texts(ctx), weakness_before(ctx, t))
    sample_cfg = ctx.cfg.sample.replaced(control_instruction=False)  # the constraints are the point
    candidates = sample_candidates(at, student, as_prompts(items), sample_cfg, name="verifiable_candidates")
    if cfg.greedy_candidate:
        greedy_cfg = sample_cfg.replaced(n=1, sampling=sample_cfg.sampling.replaced(temperature=0.0))
        greedy = sample_candidates(at, student, as_prompts(items), greedy_cfg, name="verifiable_greedy")
        candidates = {key: sampled + greedy[key] for key, sampled in candidates.items()}
    tasks = tasks if cfg.off_task_check else None
    return items, candidates, tasks, critique_candidates(at, items, candidates, cfg.strict, kinds, tasks)


def sampled(ctx: RunContext, t: int, student: ModelRef, _created: list[Prompt]) -> list[Pair]:
    items, candidates, _tasks, critiques = judged(ctx, t, student)
    return sampled_pairs(ctx.at(t), items, candidates, critiques, min_margin=ctx.cfg.verifiable.min_margin)


def repaired(ctx: RunContext, t: int, student: ModelRef, _created: list[Prompt]) -> list[Pair]:
    items, candidates, _tasks, critiques = judged(ctx, t, student)
    return repair_pairs(ctx.at(t), items, candidates, critiques, per_prompt=ctx.cfg.verifiable.repairs_per_prompt)


def refined(ctx: RunContext, t: int, student: ModelRef, _created: list[Prompt]) -> list[Pair]:
    items, candidates, tasks, critiques = judged(ctx, t, student)
    cfg = ctx.cfg
    at = ctx.at(t, shared=True)
    rewrites = refine_candidates(at, student, items, candidates, critiques, cfg.verifiable, cfg.sample.sampling, tasks)
    return refine_pairs(ctx.at(t), items, candidates, critiques, rewrites)
