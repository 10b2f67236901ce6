"""Self-refine: answer, critique the answer, revise it, and repeat while it gets better.

Madaan et al., "Self-Refine: Iterative Refinement with Self-Feedback" (NeurIPS 2023): one model
writes an answer, writes actionable feedback on it, and rewrites the answer from that feedback,
up to k rounds, stopping when the feedback finds nothing to fix. Small models' revisions often
make an answer worse, so every round is scored by a judge and the best round is returned, not the
last, and refinement stops as soon as a revision does not beat the best so far.

The feedback is the model's own critique (prompts/self_refine_feedback.txt; "NO ISSUES" stops),
or, where the prompt has verifiable instructions, the checkers' evidence for each one the answer
misses (VerifierFeedback): refinement grounded in a program, reliable even at 135M.

    autoalign generate --model smollm2-135m-instruct --input prompts.jsonl --output refined.jsonl \
        --refine 3 --select verifier
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Protocol

from autoalign.generation.base import Generator, SamplingParams
from autoalign.inference.best_of_n import pick_best
from autoalign.judges.base import Judge, JudgeItem
from autoalign.prompts import neutralize_tags, render
from autoalign.types import Message, user_message
from autoalign.verifiers.ifeval import IFEvalPrompt
from autoalign.verifiers.ifeval.evidence import evidence

FEEDBACK_TEMPLATE = "self_refine_feedback"
REVISE_TEMPLATE = "self_refine_revise"
NOTHING_TO_FIX = "NO ISSUES"


class Feedback(Protocol):
    def __call__(self, requests: list[list[Message]], answers: list[str]) -> list[str | None]:
        """Per answer, what to fix (one problem per line), or None when there is nothing to fix."""
        ...


class SelfFeedback:
    """The model (or a teacher's generator) critiques each answer."""

    def __init__(self, generator: Generator, params: SamplingParams):
        self.generator, self.params = generator, replace(params, n=1)
        self.tokens = 0

    def __call__(self, requests: list[list[Message]], answers: list[str]) -> list[str | None]:
        prompts = [
            user_message(
                render(
                    FEEDBACK_TEMPLATE,
                    instruction=neutralize_tags(req[-1]["content"]),
                    answer=neutralize_tags(answer),
                )
            )
            for req, answer in zip(requests, answers)
        ]
        out = []
        for [critique] in self.generator.generate(prompts, self.params):
            self.tokens += critique.num_tokens
            text = critique.text.strip()
            out.append(None if not text or NOTHING_TO_FIX in text.upper() else text)
        return out


class VerifierFeedback:
    """For prompts with verifiable instructions (an IFEval-format file), the evidence for each
    instruction the answer misses; None when it follows all of them, or the prompt has none."""

    def __init__(self, items: list[IFEvalPrompt]):
        self.by_text = {item.prompt.strip(): item for item in items}
        self.tokens = 0

    def __call__(self, requests: list[list[Message]], answers: list[str]) -> list[str | None]:
        out = []
        for req, answer in zip(requests, answers):
            spec = self.by_text.get(req[-1]["content"].strip())
            if spec is None:
                out.append(None)
                continue
            missed = [evidence(i, k, answer) for i, k in zip(spec.instruction_ids, spec.kwargs)]
            problems = [f"- {line}" for line in missed if line != "followed"]
            out.append("\n".join(problems) or None)
        return out


@dataclass(frozen=True)
class Round:
    text: str
    score: float | None
    feedback: str | None = None
    """The feedback this round's answer got (None: not asked, or nothing to fix)."""


@dataclass(frozen=True)
class Refined:
    """Every round's answer (round 0 is the first answer), the best one's index, why it stopped
    ("nothing_to_fix", "no_improvement", "max_rounds") and the tokens generated for it."""

    rounds: list[Round]
    best: int
    stopped: str
    tokens: int

    @property
    def answer(self) -> str:
        return self.rounds[self.best].text

    def to_dict(self) -> dict:
        return {"rounds": [asdict(r) for r in self.rounds], "best": self.best, "stopped": self.stopped}


def revise(
    generator: Generator, params: SamplingParams, requests: list[list[Message]], drafts: list[str], feedback: list[str]
) -> list[tuple[str, int]]:
    """(rewritten answer, its tokens) for each draft, from its feedback (prompts/self_refine_revise.txt)."""
    prompts = [
        user_message(render(REVISE_TEMPLATE, instruction=req[-1]["content"], draft=neutralize_tags(d), feedback=f))
        for req, d, f in zip(requests, drafts, feedback)
    ]
    return [(c.text, c.num_tokens) for [c] in generator.generate(prompts, replace(params, n=1))]


def self_refine(
    generator: Generator,
    judge: Judge,
    feedback: Feedback,
    requests: list[list[Message]],
    params: SamplingParams,
    max_rounds: int = 3,
    drafts: list[str] | None = None,
) -> list[Refined]:
    """Answer every request (or start from the given drafts), then up to max_rounds of feedback
    -> revision -> judge on those still improving; return each request's best-scored round."""
    if drafts is None:
        first = [c for [c] in generator.generate(requests, replace(params, n=1))]
        drafts, tokens = [c.text for c in first], [c.num_tokens for c in first]
    else:
        tokens = [0] * len(drafts)
    scores = [v.score for v in judge.judge([JudgeItem(r, d) for r, d in zip(requests, drafts)])]
    rounds = [[Round(d, s)] for d, s in zip(drafts, scores)]
    stopped = ["max_rounds"] * len(requests)
    active = list(range(len(requests)))
    for _ in range(max_rounds):
        if not active:
            break
        notes = feedback([requests[i] for i in active], [rounds[i][-1].text for i in active])
        pending = {}
        for i, note in zip(active, notes):
            rounds[i][-1] = replace(rounds[i][-1], feedback=note)
            if note is None:
                stopped[i] = "nothing_to_fix"
            else:
                pending[i] = note
        to_revise = list(pending)
        if not to_revise:
            break
        rewrites = revise(
            generator,
            params,
            [requests[i] for i in to_revise],
            [rounds[i][-1].text for i in to_revise],
            [pending[i] for i in to_revise],
        )
        verdicts = judge.judge([JudgeItem(requests[i], text) for i, (text, _) in zip(to_revise, rewrites)])
        active = []
        for i, (text, used), verdict in zip(to_revise, rewrites, verdicts):
            best_so_far = max((r.score for r in rounds[i] if r.score is not None), default=None)
            rounds[i].append(Round(text, verdict.score))
            tokens[i] += used
            improved = verdict.score is not None and (best_so_far is None or verdict.score > best_so_far)
            if improved:
                active.append(i)
            else:
                stopped[i] = "no_improvement"
    return [
        Refined(rounds=r, best=pick_best([x.score for x in r]), stopped=s, tokens=t)
        for r, s, t in zip(rounds, stopped, tokens)
    ]
