"""Self-refine feedback (Madaan et al. 2023, "Self-Refine: Iterative Refinement with Self-Feedback"):
the model's revised answer, when the judge scores it higher, is preferred over its first answer.

    samples      = the student's samples (shared with the other paradigms; the first non-empty one)
    refinements  = feedback on the answer, a revision from it, up to self_refine.max_rounds, each
                   round scored by the recipe's judge (the rubric self-judge, a verifier or a
                   reward model); stops when the feedback finds nothing or a revision is no better
    pairs        = chosen = the best-scored round, rejected = the first answer; none where no
                   revision beat it (counted)

Run it:  autoalign run recipes/self_reward_small.yaml loop=self_refine sample.n=1
"""

from __future__ import annotations

from autoalign.loops.context import RunContext
from autoalign.runtime.pool import ModelRef
from autoalign.stages.sampling import first_answers, sample_candidates
from autoalign.stages.self_refine import refine_drafts, refinement_pairs
from autoalign.types import Pair, Prompt

SOURCE = "self_refine"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    samples = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    drafts = first_answers(samples)
    critic = ctx.teacher if cfg.self_refine.critic == "teacher" else student
    refined = refine_drafts(ctx.at(t), critic, student, prompts, drafts, cfg.self_refine, cfg.judge, ctx.make_judge)
    return refinement_pairs(ctx.at(t), prompts, refined, SOURCE)
