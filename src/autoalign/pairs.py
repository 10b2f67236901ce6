"""Preference-pair policies: how judged candidates become {prompt, chosen, rejected} rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from autoalign.inference.self_consistency import consensus
from autoalign.types import Candidate, Judgment, Pair, Preference, Prompt


class NoPairsError(RuntimeError):
    """The feedback produced no usable preference pair, so there is nothing to train on."""


@dataclass(frozen=True)
class JudgedCandidates:
    prompt: Prompt
    candidates: list[Candidate]
    judgments: list[Judgment]


def best_vs_worst(
    groups: list[JudgedCandidates], min_margin: float = 0.0, source: str = "self_reward"
) -> tuple[list[Pair], Counter]:
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
                **ranked_fields(scored),
            )
        )
    return pairs, dropped


def ranked_fields(scored: list[tuple[float, Candidate]]) -> dict:
    """Pair.ranked / ranked_scores: every scored answer, best first (sample order among equal
    scores), for the ranking losses."""
    ordered = sorted(scored, key=lambda sc: -sc[0])  # stable: equal scores keep their order
    return {"ranked": [c.text for _, c in ordered], "ranked_scores": [float(s) for s, _ in ordered]}


def _same_answer(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def demonstration_pairs(
    prompts: list[Prompt],
    references: dict[str, Candidate],
    students: dict[str, list[Candidate]],
    source: str,
    min_chars: int = 1,
) -> tuple[list[Pair], Counter]:
    """Chosen = a reference answer (the teacher's own answer, or a dataset's gold answer),
    rejected = the student's first usable sample for the same prompt.

    A prompt makes no pair, and the reason is counted, when the reference failed, is empty
    (shorter than min_chars) or was cut off at max tokens, when the student has no usable
    sample, or when the two answers are the same text (up to whitespace and case): training to
    prefer an answer over itself teaches nothing.
    """
    pairs: list[Pair] = []
    dropped: Counter = Counter()
    for prompt in prompts:
        ref = references[prompt.id]
        student = next((c for c in students.get(prompt.id, []) if c.finish_reason != "error"), None)
        if ref.finish_reason == "error":
            dropped["reference_failed"] += 1
        elif len(ref.text.strip()) < min_chars:
            dropped["reference_empty"] += 1
        elif ref.finish_reason == "length":
            dropped["reference_truncated"] += 1
        elif student is None:
            dropped["student_failed"] += 1
        elif _same_answer(ref.text, student.text):
            dropped["identical"] += 1
        else:
            pairs.append(
                Pair(prompt_id=prompt.id, prompt=prompt.messages, chosen=ref.text, rejected=student.text, source=source)
            )
    return pairs, dropped


@dataclass(frozen=True)
class Comparison:
    """One pairwise verdict between candidates i and j of a prompt (i asked as "first")."""

    first: int
    second: int
    preference: Preference


def pairwise_best_vs_worst(
    prompt: Prompt, candidates: list[Candidate], comparisons: list[Comparison], source: str
) -> tuple[Pair | None, str | None]:
    """From round-robin pairwise verdicts (each asked in both orders): chosen = the candidate with
    most consistent wins, rejected = the one with fewest (first sampled on equal counts). The pair
    is kept only if chosen beat rejected in their own comparison; otherwise the reason is
    returned: "order_inconsistent" (the two orders disagreed: a tie), "unparsed", or "tie".
    With two candidates this is exactly: keep the pair iff both orders agree."""
    if len(candidates) < 2:
        return None, "fewer_than_two_candidates"
    wins = [0] * len(candidates)
    direct: dict[tuple[int, int], Preference] = {}
    for comp in comparisons:
        direct[(comp.first, comp.second)] = comp.preference
        if comp.preference.winner in ("first", "second"):
            wins[comp.first if comp.preference.winner == "first" else comp.second] += 1
    best = max(range(len(wins)), key=lambda i: (wins[i], -i))
    worst = min((i for i in range(len(wins)) if i != best), key=lambda i: (wins[i], i))
    best_is_first = (best, worst) in direct
    pref = direct.get((best, worst)) or direct.get((worst, best))
    if pref is None or pref.winner is None:
        return None, "unparsed"
    if pref.winner == "tie":
        return None, "order_inconsistent"
    best_won = (pref.winner == "first") == best_is_first
    if not best_won or wins[best] == wins[worst]:
        return None, "tie"
    return Pair(
        prompt_id=prompt.id,
        prompt=prompt.messages,
        chosen=candidates[best].text,
        rejected=candidates[worst].text,
        chosen_score=float(wins[best]),
        rejected_score=float(wins[worst]),
        source=source,
        **ranked_fields([(float(w), c) for w, c in zip(wins, candidates)]),
    ), None


def consensus_pairs(
    prompts: list[Prompt],
    candidates: dict[str, list[Candidate]],
    agreement: str,
    threshold: float,
    min_confidence: float,
    source: str,
    vote_on: Callable[[str], str] = lambda text: text,
) -> tuple[list[Pair], Counter, dict]:
    """Self-consistency (inference/self_consistency.py): the majority cluster's answer is chosen
    over the first answer of each minority cluster. Failed and empty samples do not vote; the
    chosen answer is a majority member that finished (not cut off). A prompt makes no pair, and
    the reason is counted, when fewer than two samples vote, all agree, the majority is tied or
    holds less than min_confidence of the votes (uncertain), or no majority answer finished.
    vote_on(text): what of a sample is compared (its final answer, say); the pairs hold the
    whole samples."""
    pairs: list[Pair] = []
    dropped: Counter = Counter()
    confidences = []
    for prompt in prompts:
        voters = [c for c in candidates.get(prompt.id, []) if c.finish_reason != "error" and c.text.strip()]
        if len(voters) < 2:
            dropped["too_few_samples"] += 1
            continue
        vote = consensus([vote_on(c.text) for c in voters], agreement, threshold)
        confidences.append(vote.confidence)
        if vote.confidence == 1.0:
            dropped["unanimous"] += 1
            continue
        if not vote.preference_pairs(min_confidence):
            dropped["uncertain"] += 1
            continue
        chosen = next((voters[i] for i in vote.members(vote.majority) if voters[i].finish_reason == "stop"), None)
        if chosen is None:
            dropped["majority_truncated"] += 1
            continue
        share = vote.confidence
        for cid in sorted(set(vote.cluster) - {vote.majority}):
            rejected = voters[vote.members(cid)[0]]
            minority = len(vote.members(cid)) / len(voters)
            pairs.append(Pair(prompt.id, prompt.messages, chosen.text, rejected.text, share, minority, source=source))
    metrics = {"mean_confidence": sum(confidences) / len(confidences) if confidences else None}
    return pairs, dropped, metrics
