"""Constitutional feedback (Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback"):
the model critiques its answers against written principles and revises them.

    samples    = the student's samples (shared with the other paradigms; the first non-empty one)
    revisions  = per answer, a principle drawn from constitution.file; the reviser (the student,
                 or the teacher) critiques the answer against it, then rewrites it (section 3.1)
    pairs      = chosen = the revision, rejected = the original; dropped when the revision failed,
                 is empty, was cut off, or equals the original (counted)

The revisions are also SFT data (iter_t/revisions/data.jsonl rows carry `messages`), which the
DPO stage's dpo.sft_weight trains on as the chosen answers' NLL.
Run it:  autoalign run recipes/constitutional.yaml
"""

from __future__ import annotations

from autoalign.config import ConfigError, RunConfig
from autoalign.inference.constitutional import load_constitution
from autoalign.io import DataError
from autoalign.loops.context import RunContext
from autoalign.runtime.pool import ModelRef
from autoalign.stages.constitutional import constitutional_revisions
from autoalign.stages.pairs import reference_pairs
from autoalign.stages.sampling import first_answers, sample_candidates
from autoalign.types import Pair, Prompt

SOURCE = "constitutional"


def check_config(cfg: RunConfig) -> None:
    """The constitution is read before the run directory exists, so a bad file fails first."""
    try:
        load_constitution(cfg.constitution.file)
    except DataError as e:
        raise ConfigError(f"constitution.file: {e}") from None


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    samples = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    originals = first_answers(samples)
    reviser = ctx.teacher if cfg.constitution.reviser == "teacher" else student
    principles = load_constitution(cfg.constitution.file)
    revisions = constitutional_revisions(ctx.at(t), reviser, prompts, originals, principles, cfg.constitution)
    students = {pid: [c] for pid, c in originals.items()}
    return reference_pairs(ctx.at(t), prompts, revisions, students, source=SOURCE, min_chars=cfg.constitution.min_chars)
