"""The rounds of the loop, from M1 on: each iteration writes prompts, gets the feedback of the
recipe's source(s) as preference pairs, trains M_{t+1} with DPO and evaluates it against M_t.
The feedback step is looked up by name in the registry (autoalign/registry.py), so a new kind
of feedback is a new file and a registry entry, not an edit here.
"""

from __future__ import annotations

import random

from autoalign.eval import suite
from autoalign.eval.paired import FINAL_PAIRED
from autoalign.eval.judge_compare import compare_models
from autoalign.loops.context import RunContext
from autoalign.registry import FEEDBACK, feedback_source
from autoalign.runtime.pool import ModelRef
from autoalign.stages.pairs import mix_pairs
from autoalign.stages.prompts import create_prompts
from autoalign.stages.training import train_dpo_stage, train_sft_stage
from autoalign.verifiers.ifeval import load_ifeval


def initial_model(ctx: RunContext, m0: ModelRef) -> ModelRef:
    """M1: M0 after SFT on the IFT (+ EFT) seed, or M0 itself (an instruct model) when SFT is off."""
    cfg = ctx.cfg
    if not cfg.sft.enabled:
        return ModelRef("M1", m0.path, m0.key)
    conversations = ctx.ift + (ctx.eft_conversations if cfg.sft.use_eft else [])
    if cfg.sft.max_examples and cfg.sft.max_examples < len(conversations):
        conversations = random.Random(ctx.seed).sample(conversations, cfg.sft.max_examples)
    return train_sft_stage(ctx.at(0, shared=True), m0, conversations, cfg.sft)


def evaluation_texts(ctx: RunContext) -> frozenset[str]:
    """Prompts the evaluation uses, which training prompts taken from a file must not include."""
    if not ctx.cfg.create_prompts.from_file:
        return frozenset()
    texts = {p.text.strip() for p in ctx.heldout[: ctx.cfg.eval.num_prompts]}
    if ctx.cfg.eval.ifeval_prompts:
        texts |= {item.prompt.strip() for item in load_ifeval(ctx.cfg.eval.ifeval_file)[: ctx.cfg.eval.ifeval_prompts]}
    return frozenset(texts)


def final_against_start(ctx: RunContext, m1: ModelRef, final: ModelRef) -> None:
    """The last model against M1, where the loop started, on the same IFEval prompts: the larger
    final set when eval.ifeval_final_prompts is set, else each iteration's slice (from 2
    iterations on; with one, the iteration's own comparison is already this)."""
    cfg = ctx.cfg.eval
    final_at, start_at = ctx.at(ctx.cfg.iterations), ctx.at(1, shared=True)
    if cfg.ifeval_final_prompts:
        kind, name = "ifeval_final", FINAL_PAIRED
        items = load_ifeval(cfg.ifeval_file)[: cfg.ifeval_final_prompts]
        for at, ref in ((start_at, m1), (final_at, final)):
            suite.ifeval(at, ref, items, cfg.ifeval_sampling, kind=kind)
    elif cfg.ifeval_prompts and ctx.cfg.iterations > 1:
        kind, name = "ifeval", "ifeval_paired"  # the slice each iteration already evaluated
    else:
        return
    rows = lambda at, ref: (ref.label, suite.ifeval_rows(at, ref.label, kind=kind))
    suite.ifeval_paired(
        final_at, rows(final_at, final), rows(start_at, m1), held_out=ctx.cfg.verifiable.held_out, name=name
    )


def evaluate_iteration(ctx: RunContext, t: int, trained: ModelRef, current: ModelRef, m1: ModelRef) -> None:
    """M_{t+1} against M_t on the held-out prompts with the fixed evaluation judge (and IFEval)."""
    cfg = ctx.cfg
    # M1's answers and verdicts live with the shared stages (branches judge M1 only once);
    # a later M_t was evaluated as the newer model in iteration t-1.
    old_at = ctx.at(1, shared=True) if current == m1 else ctx.at(t - 1)
    judge = {"initial": m1, "teacher": ctx.teacher}.get(cfg.eval.judge) or current
    compare_models(
        ctx.at(t),
        trained,
        current,
        judge,
        ctx.heldout,
        cfg.eval,
        cfg.judge,
        ctx.make_eval_judge,
        old_at=old_at,
        held_out=cfg.verifiable.held_out,
    )


def iterate(ctx: RunContext, m1: ModelRef) -> dict:
    cfg, pool = ctx.cfg, ctx.pool
    sources = cfg.sources
    make_pairs = {s: feedback_source(s) for s in sources}
    results: dict = {"iterations": {}}
    current = m1
    for t in range(1, cfg.iterations + 1):
        prompts = []
        if any(FEEDBACK[s].uses_created_prompts for s in sources):
            prompts = create_prompts(
                ctx.at(t, shared=True),
                current,
                ctx.seed_instructions,
                cfg.create_prompts,
                exclude=evaluation_texts(ctx),
            )
        pairs = mix_pairs(ctx.at(t), {s: make(ctx, t, current, prompts) for s, make in make_pairs.items()}, sources)
        pool.release()
        trained = train_dpo_stage(ctx.at(t), current, pairs, cfg.dpo)
        if cfg.eval.enabled:
            evaluate_iteration(ctx, t, trained, current, m1)
        pool.release()
        results["iterations"][t] = {"model": str(trained.path)}
        current = trained
    if cfg.eval.enabled:
        final_against_start(ctx, m1, current)
    results["final_model"] = str(current.path)
    return results
