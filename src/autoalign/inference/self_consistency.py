"""Self-consistency: sample several answers and trust what most of them agree on.

Wang et al., "Self-Consistency Improves Chain of Thought Reasoning in Language Models" (ICLR
2023): sample N reasoning paths, keep the answer most of them reach (a majority vote over final
answers); the share that agrees is a confidence, low where the model is unsure. For free text,
where no two samples are equal, answers are grouped by similarity instead: here ROUGE-L F1 on
words (2 LCS / (|a| + |b|), computed as rapidfuzz's normalised Indel similarity, which is the
same number), each answer joining the first cluster whose first member it matches at or above a
threshold.

As feedback: the majority's answer is preferred over each minority cluster's, and prompts whose
majority holds less than `min_confidence` of the samples, or is tied, give no pair (uncertain:
filtered, or routed to a stronger judge or a person).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import Indel

Agreement = Literal["exact", "normalised", "rouge"]


def normalise(text: str) -> str:
    """Case, Unicode compatibility forms, punctuation and spacing do not make answers differ."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 between two texts on normalised words (1.0 for two empty texts)."""
    return Indel.normalized_similarity(normalise(a).split(), normalise(b).split())


def clusters(texts: list[str], agreement: Agreement = "normalised", threshold: float = 0.7) -> list[int]:
    """A cluster id per text, clusters numbered in order of first appearance."""
    if agreement not in ("exact", "normalised", "rouge"):
        raise ValueError(f"agreement must be exact, normalised or rouge, not {agreement!r}")
    firsts: list[str] = []  # each cluster's first member
    out = []
    for text in texts:
        for cid, first in enumerate(firsts):
            if agreement == "exact":
                same = text.strip() == first.strip()
            elif agreement == "normalised":
                same = normalise(text) == normalise(first)
            else:
                same = rouge_l(text, first) >= threshold
            if same:
                out.append(cid)
                break
        else:
            out.append(len(firsts))
            firsts.append(text)
    return out


@dataclass(frozen=True)
class Consensus:
    """cluster: each sample's cluster id. majority: the largest cluster (the earliest on ties).
    confidence: the share of samples in it. tied: another cluster is as large."""

    cluster: list[int]
    majority: int
    confidence: float
    tied: bool

    def members(self, cid: int) -> list[int]:
        return [i for i, c in enumerate(self.cluster) if c == cid]

    @property
    def representative(self) -> int:
        """The majority's first sample: the answer self-consistency returns."""
        return self.members(self.majority)[0]

    def preference_pairs(self, min_confidence: float = 0.5) -> list[tuple[int, int]]:
        """(chosen, rejected) sample indices: the majority's answer over each minority cluster's
        first answer; none when the majority is tied or holds less than min_confidence."""
        if self.tied or self.confidence < min_confidence:
            return []
        minorities = sorted(set(self.cluster) - {self.majority})
        return [(self.representative, self.members(cid)[0]) for cid in minorities]


def consensus(texts: list[str], agreement: Agreement = "normalised", threshold: float = 0.7) -> Consensus:
    if not texts:
        raise ValueError("self-consistency needs at least one sample")
    ids = clusters(texts, agreement, threshold)
    sizes = [ids.count(cid) for cid in range(max(ids) + 1)]
    biggest = max(sizes)
    return Consensus(
        cluster=ids, majority=sizes.index(biggest), confidence=biggest / len(texts), tied=sizes.count(biggest) > 1
    )


ANSWER_MARKER = re.compile(r"final answer\s*(?:is|:)?|the answer is|answer:", re.IGNORECASE)


def final_answer(text: str) -> str:
    """The short answer a reasoning path ends with: the rest of the line after its last "the answer
    is" / "Answer:" / "final answer", else its last non-empty line. Vote on this for tasks with
    one right answer."""
    markers = list(ANSWER_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].strip()
        return rest.splitlines()[0].strip() if rest else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
