"""A program as the judge: IFEval's instruction checkers as a reward signal.

For a prompt that carries verifiable instructions (an IFEval-format file), the score is 5 x the
share of those instructions the response follows (loose: a preamble line or markdown emphasis is
forgiven), so it sits on the same 0..5 scale as the rubric and feeds the same best-vs-worst
pairs. A prompt the file does not know gets no score (counted as unparsed, never 0).
"""

from __future__ import annotations

from autoalign.verifiers.ifeval import SCORER_VERSION, IFEvalPrompt, load_ifeval, score_response
from autoalign.judges.base import JudgeItem
from autoalign.verdicts import MAX_SCORE
from autoalign.store import content_key
from autoalign.types import Judgment


class IFEvalVerifier:
    def __init__(self, items: list[IFEvalPrompt], loose: bool = True):
        self.by_text = {item.prompt.strip(): item for item in items}
        self.loose = loose

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        out = []
        for item in items:
            spec = self.by_text.get(item.prompt[-1]["content"].strip())
            if spec is None:
                out.append(
                    Judgment(score=None, raw=["verifier: no verifiable instructions for this prompt"], parsed=False)
                )
                continue
            result = score_response(spec, item.response)
            followed = result.loose if self.loose else result.strict
            score = MAX_SCORE * sum(followed) / len(followed)
            detail = ", ".join(f"{i}={'yes' if ok else 'no'}" for i, ok in zip(spec.instruction_ids, followed))
            out.append(Judgment(score=score, raw=[f"verifier: {detail}"], parsed=True, samples=[score]))
        return out


class VerifierJudgeFactory:
    """judge.verifier=ifeval: the checkers of an IFEval-format file judge every candidate. The
    key (part of the judging stages' keys) names the file's prompts and instructions."""

    kind = "verifier"

    def __init__(self, file: str):
        self.items = load_ifeval(file)
        self.key = content_key(
            "ifeval-verifier", SCORER_VERSION, [(i.prompt, i.instruction_ids, i.kwargs) for i in self.items]
        )

    def __call__(self, ref, cfg, seed) -> IFEvalVerifier:
        return IFEvalVerifier(self.items)


def from_config(judge_cfg) -> VerifierJudgeFactory:
    """judge.verifier=ifeval (registry.VERIFIERS): the checkers of judge.verifier_file."""
    return VerifierJudgeFactory(judge_cfg.verifier_file)
