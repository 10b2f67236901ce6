"""Teacher-reward feedback (online AI feedback; Guo et al. 2024, "Direct Language Model
Alignment from Online AI Feedback"): the student samples, a stronger teacher judges.

    candidates = N samples per prompt from the student M_t
    pointwise:  the teacher scores each with the same 5-point rubric; pairs = best vs worst
    pairwise:   the teacher compares candidates two at a time, asked in both orders; an
                order-inconsistent verdict is a tie and makes no pair (counted)

The teacher is an in-process model or any OpenAI-compatible server (recipe key `teacher`).
Run it:  autoalign run recipes/teacher_reward.yaml
"""

from __future__ import annotations

from autoalign.stages.judging import judge_candidates
from autoalign.stages.sampling import sample_candidates
from autoalign.loops.context import RunContext
from autoalign.stages.pairs import best_vs_worst_pairs, compare_candidates, pairwise_pairs
from autoalign.runtime.pool import ModelRef
from autoalign.types import Pair, Prompt

SOURCE = "teacher_reward"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    candidates = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    if cfg.teacher_reward.mode == "pairwise":
        comparisons = compare_candidates(ctx.at(t), ctx.teacher, prompts, candidates, cfg.judge)
        return pairwise_pairs(ctx.at(t), prompts, candidates, comparisons, source=SOURCE)
    judgments = judge_candidates(
        ctx.at(t),
        ctx.teacher,
        prompts,
        candidates,
        cfg.judge,
        ctx.make_judge,
        name="teacher_judgments",
        role="teacher judge",
    )
    return best_vs_worst_pairs(ctx.at(t), prompts, candidates, judgments, cfg.pairs, source=SOURCE)
