"""Teacher-demonstration feedback: the teacher's own answer is preferred over the student's
(as in distilled preference data, e.g. Tunstall et al. 2023's chosen = stronger model). No judge.

    answers  = one answer per prompt from the teacher
    samples  = the student's samples (shared with the other paradigms; the first usable one)
    pairs    = chosen = teacher answer, rejected = student sample; dropped when the teacher's
               answer failed, is empty or was cut off, or equals the student's (counted)

Run it:  autoalign run recipes/teacher_demo.yaml
"""

from __future__ import annotations

from autoalign.stages.sampling import sample_candidates
from autoalign.loops.context import RunContext
from autoalign.stages.pairs import reference_pairs
from autoalign.runtime.pool import ModelRef
from autoalign.types import Pair, Prompt

SOURCE = "teacher_demo"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    students = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    teacher_cfg = cfg.sample.replaced(n=1, sampling=cfg.teacher.sampling.model_dump())
    answers = sample_candidates(ctx.at(t, shared=True), ctx.teacher, prompts, teacher_cfg, name="teacher_answers")
    references = {pid: cands[0] for pid, cands in answers.items()}
    return reference_pairs(
        ctx.at(t), prompts, references, students, source=SOURCE, min_chars=cfg.teacher_demo.min_chars
    )
