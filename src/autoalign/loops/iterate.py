"""The iterative alignment loop every recipe runs; only the feedback step differs.

    M0 --SFT on IFT (+EFT)--> M1                          (optional for instruct models)
    for t = 1..T:
        prompts = M_t writes new instructions from few-shot IFT examples (or a prompt file)
        pairs   = the recipe's feedback source(s) on those prompts, weighted when mixed:
                    self_reward     M_t samples and judges itself          (self_reward.py)
                    teacher_reward  M_t samples, the teacher judges        (teacher_reward.py)
                    teacher_demo    teacher answer > M_t's sample          (teacher_demo.py)
                    gold_vs_sample  dataset answer > M_t's sample          (gold_vs_sample.py)
                    verified_*      a program critiques M_t's answers to synthesised
                                    verifiable prompts; fixed/best > original/worst (verified.py)
        M_{t+1} = DPO(M_t, pairs), reference M_t
        eval    = M_{t+1} vs M_t on held-out prompts, with a fixed judge

`loop: inference_time` trains nothing: it compares inference-time methods (inference_time.py).
`loop: rl` trains by online RL (GRPO / RLOO) on rewarded samples instead of pairs (rl.py).

A recipe with `branches` trains one M2 per source from the same M1 and prompts (compare.py).
Run it:  autoalign run recipes/quickstart.yaml   (verifiable instructions; self-rewarding: self_reward_small.yaml)
"""

from __future__ import annotations

from autoalign.config import RunConfig
from autoalign.judges.base import JudgeFactory
from autoalign.loops import compare, inference_time, rl, rounds
from autoalign.loops.context import build_context, writing_run_dir


def run(cfg: RunConfig, log=print, make_judge: JudgeFactory | None = None, retry_failed: bool = False) -> dict:
    """make_judge replaces the rubric judge (e.g. by a programmatic verifier); retry_failed
    re-asks items that failed in finished stages. Data, models and endpoints are checked first;
    only then is the resolved config written to runs/<name>/config.yaml (the report shows it)."""
    ctx, m0 = build_context(cfg, log, make_judge, retry_failed)
    try:
        with writing_run_dir(cfg, log):
            if cfg.branches or cfg.optimizers:
                return compare.run(ctx, m0)
            if cfg.loop == "inference_time":
                return inference_time.run(ctx, m0)
            if cfg.loop == "rl":
                return rl.iterate(ctx, rounds.initial_model(ctx, m0))
            return rounds.iterate(ctx, rounds.initial_model(ctx, m0))
    finally:
        ctx.pool.close()  # engine servers stop with the run, however it ends
