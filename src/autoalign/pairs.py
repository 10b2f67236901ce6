"""Preference-pair policies: how judged candidates become {prompt, chosen, rejected} rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from autoalign.types import Candidate, Judgment, Prompt, Pair


@dataclass(frozen=True)
class JudgedCandidates:
    prompt: Prompt
    candidates: list[Candidate]
    judgments: list[Judgment]


def best_vs_worst(groups: list[JudgedCandidates], min_margin: float = 0.0, source: str = "self_reward") -> tuple[list[Pair], Counter]:
    """Chosen = highest-scoring candidate, rejected = lowest (Yuan et al. 2024, section 2.3).

    Candidates whose judgment did not parse are left out. A prompt is dropped, and the reason
    counted, when fewer than two candidates have a score, when best and worst tie, or when the
    margin is not above min_margin. Among equal best (or worst) scores the first sampled wins,
    so the choice is deterministic.
    """
    pairs: list[Pair] = []
    dropped: Counter = Counter()
    for group in groups:
        scored = [(j.score, c) for c, j in zip(group.candidates, group.judgments) if j.score is not None]
        if len(scored) < 2:
            dropped["fewer_than_two_scores"] += 1
            continue
        best_score, best = max(scored, key=lambda sc: sc[0])
        worst_score, worst = min(scored, key=lambda sc: sc[0])
        if best_score == worst_score:
            dropped["tie"] += 1
            continue
        if best_score - worst_score <= min_margin:
            dropped["margin_too_small"] += 1
            continue
        pairs.append(
            Pair(
                prompt_id=group.prompt.id,
                prompt=group.prompt.messages,
                chosen=best.text,
                rejected=worst.text,
                chosen_score=best_score,
                rejected_score=worst_score,
                source=source,
            )
        )
    return pairs, dropped
