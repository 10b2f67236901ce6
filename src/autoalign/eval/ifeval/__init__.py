"""Verifiable instruction following (IFEval): checkers, data loading, scoring."""

from autoalign.eval.ifeval.checkers import CHECKERS
from autoalign.eval.ifeval.data import IFEvalPrompt, load_ifeval
from autoalign.eval.ifeval.scoring import PromptResult, accuracy, score_response

__all__ = ["CHECKERS", "IFEvalPrompt", "PromptResult", "accuracy", "load_ifeval", "score_response"]
