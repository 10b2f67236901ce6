"""Judges: turn (prompt, response) items into Judgments. See base.Judge for the contract."""

from autoalign.judges.base import Judge, JudgeItem
from autoalign.judges.rubric import RubricJudge, parse_score

__all__ = ["Judge", "JudgeItem", "RubricJudge", "parse_score"]
