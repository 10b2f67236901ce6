"""Self-rewarding feedback (Yuan et al. 2024, "Self-Rewarding Language Models", section 2):
the model judges its own answers.

    candidates = N samples per prompt from M_t                            (section 2.2)
    judgments  = M_t scores each candidate with the additive 5-point rubric
    pairs      = best vs worst candidate per prompt, ties dropped         (section 2.3)

The loop around it (prompt creation, DPO, evaluation) is loops/rounds.py.
Run it:  autoalign run recipes/self_reward_small.yaml
"""

from __future__ import annotations

from autoalign.stages.judging import judge_candidates
from autoalign.stages.sampling import sample_candidates
from autoalign.loops.context import RunContext
from autoalign.stages.pairs import best_vs_worst_pairs
from autoalign.runtime.pool import ModelRef
from autoalign.types import Pair, Prompt

SOURCE = "self_reward"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    candidates = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    judgments = judge_candidates(ctx.at(t), student, prompts, candidates, cfg.judge, ctx.make_judge, role="self-judge")
    return best_vs_worst_pairs(ctx.at(t), prompts, candidates, judgments, cfg.pairs, source=SOURCE)
