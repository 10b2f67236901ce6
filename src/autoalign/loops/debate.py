"""Debate feedback (Irving, Christiano and Amodei 2018, "AI safety via debate"): two of the
model's answers are argued for by two debaters, and the judge's verdict after the debate is the
preference.

    samples  = the student's samples (shared); the first two finished, different answers
    debates  = debate.rounds rounds: the student argues for the first answer, the student or the
               teacher (debate.second_debater) for the second; the judge (debate.judge: the
               student or the teacher) reads the transcript and decides, in both orders
    pairs    = chosen = the answer the judge picked; ties and unparsed verdicts make none (counted)

Run it:  autoalign run recipes/self_reward_small.yaml loop=debate
"""

from __future__ import annotations

from autoalign.loops.context import RunContext
from autoalign.runtime.pool import ModelRef
from autoalign.stages.debate import debate_answers, debate_pairs, two_answers
from autoalign.stages.sampling import sample_candidates
from autoalign.types import Pair, Prompt

SOURCE = "debate"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    samples = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    pairs = {pid: two for pid, cands in samples.items() if (two := two_answers(cands))}
    second = ctx.teacher if cfg.debate.second_debater == "teacher" else student
    judge = ctx.teacher if cfg.debate.judge == "teacher" else student
    debates = debate_answers(ctx.at(t), (student, second), judge, prompts, pairs, cfg.debate)
    return debate_pairs(ctx.at(t), prompts, debates, SOURCE)
