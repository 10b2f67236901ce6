"""The iterative alignment loop every recipe runs; only the feedback step differs.

    M0 --SFT on IFT (+EFT)--> M1                          (optional for instruct models)
    for t = 1..T:
        prompts = M_t writes new instructions from few-shot IFT examples (or a prompt file)
        pairs   = the recipe's feedback source(s) on those prompts, weighted when mixed:
                    self_reward     M_t samples and judges itself          (self_reward.py)
                    teacher_reward  M_t samples, the teacher judges        (teacher_reward.py)
                    teacher_demo    teacher answer > M_t's sample          (teacher_demo.py)
                    gold_vs_sample  dataset answer > M_t's sample          (gold_vs_sample.py)
        M_{t+1} = DPO(M_t, pairs), reference M_t
        eval    = M_{t+1} vs M_t on held-out prompts, with a fixed judge

A recipe with `branches` trains one M2 per source from the same M1 and prompts (compare.py).
Run it:  autoalign run recipes/quickstart.yaml
"""

from __future__ import annotations

import random

import yaml

from autoalign.config import RunConfig
from autoalign.eval.ifeval import load_ifeval
from autoalign.eval.judge_compare import compare_models
from autoalign.io import atomic_write_text
from autoalign.loops import gold_vs_sample, self_reward, stages, teacher_demo, teacher_reward
from autoalign.loops.context import RunContext, build_context
from autoalign.loops.pair_stages import mix_pairs
from autoalign.loops.pool import ModelRef

SOURCES = {
    "self_reward": self_reward.make_pairs,
    "teacher_reward": teacher_reward.make_pairs,
    "teacher_demo": teacher_demo.make_pairs,
    "gold_vs_sample": gold_vs_sample.make_pairs,
}


def run(cfg: RunConfig, log=print, make_judge: stages.JudgeFactory | None = None, retry_failed: bool = False) -> dict:
    """make_judge replaces the rubric judge (e.g. by a programmatic verifier); retry_failed
    re-asks items that failed in finished stages. Data, models and endpoints are checked first;
    only then is the resolved config written to runs/<name>/config.yaml (the report shows it)."""
    ctx, m0 = build_context(cfg, log, make_judge, retry_failed)
    atomic_write_text(cfg.run_dir / "config.yaml", yaml.safe_dump(cfg.redacted_dump(), sort_keys=False))
    if cfg.branches:
        from autoalign.loops import compare

        return compare.run(ctx, m0)
    return iterate(ctx, initial_model(ctx, m0))


def initial_model(ctx: RunContext, m0: ModelRef) -> ModelRef:
    """M1: M0 after SFT on the IFT (+ EFT) seed, or M0 itself (an instruct model) when SFT is off."""
    cfg = ctx.cfg
    if not cfg.sft.enabled:
        return ModelRef("M1", m0.path, m0.key)
    conversations = ctx.ift + (ctx.eft_conversations if cfg.sft.use_eft else [])
    if cfg.sft.max_examples and cfg.sft.max_examples < len(conversations):
        conversations = random.Random(ctx.seed).sample(conversations, cfg.sft.max_examples)
    return stages.train_sft_stage(ctx.shared, m0, conversations, cfg.sft, ctx.pool, ctx.seed)


def evaluation_texts(ctx: RunContext) -> frozenset[str]:
    """Prompts the evaluation uses, which training prompts taken from a file must not include."""
    if not ctx.cfg.create_prompts.from_file:
        return frozenset()
    texts = {p.text.strip() for p in ctx.heldout[: ctx.cfg.eval.num_prompts]}
    if ctx.cfg.eval.ifeval_prompts:
        texts |= {item.prompt.strip() for item in load_ifeval(ctx.cfg.eval.ifeval_file)[: ctx.cfg.eval.ifeval_prompts]}
    return frozenset(texts)


def iterate(ctx: RunContext, m1: ModelRef) -> dict:
    cfg, pool = ctx.cfg, ctx.pool
    sources = cfg.sources
    eval_judge = {"initial": m1, "teacher": ctx.teacher}.get(cfg.eval.judge)
    results: dict = {"iterations": {}}
    current = m1
    for t in range(1, cfg.iterations + 1):
        prompts = []
        if set(sources) - {"gold_vs_sample"}:
            prompts = stages.create_prompts(ctx.shared, t, current, ctx.seed_instructions, cfg.create_prompts, pool, ctx.seed, evaluation_texts(ctx))
        pairs = mix_pairs(ctx.store, t, {s: SOURCES[s](ctx, t, current, prompts) for s in sources}, sources)
        pool.release()
        trained = stages.train_dpo_stage(ctx.store, t, current, pairs, cfg.dpo, pool, ctx.seed)
        if cfg.eval.enabled:
            # M1's answers and verdicts live with the shared stages (branches judge M1 only once);
            # a later M_t was evaluated as the newer model in iteration t-1.
            old_at = (ctx.shared, 1) if current == m1 else (ctx.store, t - 1)
            compare_models(ctx.store, t, trained, current, eval_judge or current, ctx.heldout, cfg.eval, cfg.judge, pool, ctx.make_eval_judge, ctx.seed, old_at)
        pool.release()
        results["iterations"][t] = {"model": str(trained.path)}
        current = trained
    results["final_model"] = str(current.path)
    return results
