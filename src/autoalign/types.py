"""Small frozen records passed between stages.

Every record converts to and from a plain dict so it can be written as one JSONL row and
read back by `datasets` or any other tool. Messages use the chat format the Hugging Face
ecosystem uses: ``{"role": "user" | "assistant" | "system", "content": str}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, str]


def user_message(text: str) -> list[Message]:
    return [{"role": "user", "content": text}]


@dataclass(frozen=True)
class Prompt:
    """An instruction to answer, with where it came from (seed, created, heldout...)."""

    id: str
    messages: list[Message]
    source: str = ""

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Prompt:
        return cls(id=row["id"], messages=row["messages"], source=row.get("source", ""))


@dataclass(frozen=True)
class Candidate:
    """One sampled answer. finish_reason is "stop" (EOS reached), "length" (max tokens) or
    "error" (a remote backend gave no answer; `error` says why, text is empty).
    logprobs: each generated token's log-probability. When the backend was asked for them
    (SamplingParams.top_logprobs > 0), tokens holds each generated token's text and top_logprobs,
    per generated token, the most likely alternatives {token text: log-probability}."""

    text: str
    num_tokens: int
    finish_reason: str
    logprobs: list[float] | None = None
    tokens: list[str] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Candidate:
        return cls(text="", num_tokens=0, finish_reason="error", error=error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Candidate:
        return cls(**row)


@dataclass(frozen=True)
class Judgment:
    """A judge's verdict on one answer. score is None when the judge's output did not parse;
    it is never silently replaced by 0. samples holds each of the k judge samples' scores."""

    score: float | None
    raw: list[str]
    parsed: bool
    samples: list[int | None] = field(default_factory=list)
    confidence: float | None = None
    error: str | None = None
    """Why there is no verdict when the judge could not be asked (e.g. a failed request)."""
    unparsed: list[str] = field(default_factory=list)
    """Why each judge sample that gave no score gave none: no_verdict_line, cut_at_max_tokens,
    copied_from_response, failed."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Judgment:
        return cls(**row)


@dataclass(frozen=True)
class Finding:
    """One constraint a critic checked: whether the answer meets it (None = could not tell),
    and the evidence (a verifier's result, or the critic's words)."""

    constraint: str
    satisfied: bool | None
    evidence: str = ""


@dataclass(frozen=True)
class Critique:
    """A critic's review of one answer: the critique text the learner revises from, an overall
    score on the rubric's 0..5 scale (None when it did not parse), per-constraint findings, and
    how sure the critic is (0..1; low confidence routes the case to a human)."""

    text: str
    score: float | None
    findings: list[Finding] = field(default_factory=list)
    confidence: float | None = None
    raw: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Critique:
        return cls(**{**row, "findings": [Finding(**f) for f in row.get("findings", [])]})


@dataclass(frozen=True)
class Preference:
    """A pairwise verdict on (first, second), asked in both orders (see judges/pairwise.py).

    winner: "first" or "second" when both orders agree, "tie" when they disagree, None when a
    verdict did not parse. verdicts: each order's verdict, in first/second terms. p_first: the
    probability that first is better, from token log-probabilities when the backend gave them,
    else 1, 0.5 or 0 from the winner; None when winner is None."""

    winner: str | None
    verdicts: list[str | None]
    raw: list[str]
    p_first: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Preference:
        return cls(**row)


@dataclass(frozen=True)
class Pair:
    """A preference pair in the ecosystem's {prompt, chosen, rejected} form, chat messages
    for the prompt and plain text for the two answers, plus how the pair was made."""

    prompt_id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    chosen_score: float | None = None
    rejected_score: float | None = None
    source: str = ""
    """Which feedback made the pair: self_reward, teacher_reward, teacher_demo, gold_vs_sample..."""
    weight: float = 1.0
    """Relative weight of this pair in the DPO loss (set per source in mixed recipes)."""
    ranked: list[str] | None = None
    """Every judged answer to the prompt, best first (chosen and rejected among them), for the
    ranking losses (dpo.loss rrhf, pro); None when the pair is all the feedback had."""
    ranked_scores: list[float] | None = None
    """The judge's score of each answer in `ranked`."""

    @property
    def ranking(self) -> tuple[list[str], list[float]]:
        """(answers best first, their scores): `ranked`, or the pair itself (scores 1 and 0
        where the feedback gave none)."""
        if self.ranked:
            return self.ranked, self.ranked_scores
        if self.margin is not None and self.margin > 0:
            return [self.chosen, self.rejected], [self.chosen_score, self.rejected_score]
        return [self.chosen, self.rejected], [1.0, 0.0]

    @property
    def margin(self) -> float | None:
        if self.chosen_score is None or self.rejected_score is None:
            return None
        return self.chosen_score - self.rejected_score

    def to_dict(self) -> dict[str, Any]:
        """The conversational preference format (prompt, chosen and rejected as message lists),
        which `datasets` loads and TRL-style trainers accept as is."""
        row = asdict(self)
        for name in ("ranked", "ranked_scores"):  # absent unless set: older pair files and keys stay as they were
            if row[name] is None:
                del row[name]
        row["chosen"] = [{"role": "assistant", "content": self.chosen}]
        row["rejected"] = [{"role": "assistant", "content": self.rejected}]
        row["margin"] = self.margin
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Pair:
        row = {k: v for k, v in row.items() if k != "margin"}
        for side in ("chosen", "rejected"):
            if isinstance(row[side], list):
                row[side] = row[side][-1]["content"]
        return cls(**row)


@dataclass(frozen=True)
class RankedGroup:
    """Responses to one prompt with their gold scores (higher is better), for measuring a judge."""

    prompt: str
    responses: list[str]
    gold: list[float]
