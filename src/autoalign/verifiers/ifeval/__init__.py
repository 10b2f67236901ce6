"""Verifiable instruction following (IFEval): checkers, data loading, scoring."""

from autoalign.verifiers.ifeval.checkers import CHECKERS
from autoalign.verifiers.ifeval.data import IFEvalPrompt, load_ifeval
from autoalign.verifiers.ifeval.scoring import SCORER_VERSION, PromptResult, accuracy, score_response

__all__ = ["CHECKERS", "SCORER_VERSION", "IFEvalPrompt", "PromptResult", "accuracy", "load_ifeval", "score_response"]
