"""Self-instruct style prompt creation: show the model a few seed tasks, ask for new ones, and
keep only new, well-formed, non-duplicate instructions (Wang et al. 2023, "Self-Instruct";
used for prompt creation in Yuan et al. 2024, section 2.2).

Near duplicates are found with ROUGE-L F1 over lowercased words. An exact upper bound (the
unigram-overlap F1, since a common subsequence never exceeds the common words) skips most of
the quadratic LCS work.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field

from autoalign.prompts import render
from autoalign.types import Message

_TASK_PREFIX = re.compile(r"^\s*(?:[-*\d.)\s]*)\**\s*task\s*\d*\s*\**\s*[:.)-]\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
# Tasks a text-only model cannot do, or that talk about the few-shot request itself.
_UNSUITABLE = re.compile(
    r"\b(image|picture|photo|video|audio|draw|diagram|example tasks?|the examples?)\b", re.IGNORECASE
)


def fewshot_request(seed_instructions: list[str], shots: int, rng: random.Random, count: int) -> list[Message]:
    examples = rng.sample(seed_instructions, k=min(shots, len(seed_instructions)))
    lines = "\n".join(f"Task: {' '.join(e.split())}" for e in examples)
    return [{"role": "user", "content": render("create_instructions", count=str(count), examples=lines)}]


def parse_tasks(text: str, truncated: bool) -> tuple[list[str], int]:
    """Tasks written one per line after "Task:". Returns (tasks, dropped_truncated): when the
    output hit the token limit its last task may be cut off, so it is dropped."""
    tasks = []
    for line in text.splitlines():
        match = _TASK_PREFIX.match(line)
        if match:
            tasks.append(line[match.end() :])
    if truncated and tasks:
        return tasks[:-1], 1
    return tasks, 0


def normalise(task: str) -> str:
    task = " ".join(task.split())
    return task.strip(" \"'`*")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_f1(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    lcs = _lcs_length(a, b)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def _overlap_bound(a: Counter, b: Counter, len_a: int, len_b: int) -> float:
    common = sum((a & b).values())
    return 2 * common / (len_a + len_b) if len_a + len_b else 0.0


@dataclass
class PromptFilter:
    """Accepts new instructions one at a time and records why the others were dropped."""

    existing: list[str]
    similarity_threshold: float = 0.7
    min_chars: int = 12
    max_chars: int = 400
    kept: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._seen_exact = {" ".join(words(t)) for t in self.existing}
        self._bags = [(words(t), Counter(words(t))) for t in self.existing]

    def offer(self, raw: str) -> bool:
        task = normalise(raw)
        reason = self._reject_reason(task)
        if reason:
            self.dropped[reason] += 1
            return False
        toks = words(task)
        self._seen_exact.add(" ".join(toks))
        self._bags.append((toks, Counter(toks)))
        self.kept.append(task)
        return True

    def _reject_reason(self, task: str) -> str | None:
        if not task:
            return "empty"
        if len(task) < self.min_chars or len(words(task)) < 3:
            return "too_short"
        if len(task) > self.max_chars:
            return "too_long"
        if _UNSUITABLE.search(task):
            return "unsuitable"
        toks = words(task)
        if " ".join(toks) in self._seen_exact:
            return "exact_duplicate"
        bag = Counter(toks)
        for other, other_bag in self._bags:
            if _overlap_bound(bag, other_bag, len(toks), len(other)) <= self.similarity_threshold:
                continue
            if rouge_l_f1(toks, other) > self.similarity_threshold:
                return "near_duplicate"
        return None
