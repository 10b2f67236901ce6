"""Weak-to-strong generalisation, measured (Burns et al. 2023, "Weak-to-Strong Generalization:
Eliciting Strong Capabilities With Weak Supervision", section 3):

    weak            the weak supervisor's accuracy on test comparisons whose truth is known
    strong_on_weak  the strong student's, trained on the weak supervisor's labels
    ceiling         the strong student's, trained on the true labels
    PGR = (strong_on_weak - weak) / (ceiling - weak)     the performance gap recovered

PGR is 1 when weak labels teach the student as well as the truth, 0 when it only learns to be as
good as its supervisor. With a few hundred test items and a small gap the ratio is unstable, so
its interval is a paired bootstrap over the test items (all three accuracies recomputed on the
same resample); resamples where the gap vanishes are left out and counted.
"""

from __future__ import annotations

import random


def credit(margin_or_winner, truth: str) -> float:
    """1 for the right answer, 0 for the wrong one, 0.5 for no preference (a tie, a zero margin)."""
    if isinstance(margin_or_winner, str) or margin_or_winner is None:
        side = margin_or_winner
    else:
        side = "first" if margin_or_winner > 0 else "second" if margin_or_winner < 0 else None
    if side not in ("first", "second"):
        return 0.5
    return 1.0 if side == truth else 0.0


def pgr(weak: float, strong_on_weak: float, ceiling: float) -> float | None:
    """None when the ceiling does not beat the weak supervisor (no gap to recover)."""
    gap = ceiling - weak
    return None if gap <= 0 else (strong_on_weak - weak) / gap


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def bootstrap_pgr(
    weak: list[float],
    strong_on_weak: list[float],
    ceiling: list[float],
    samples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Per-item credits of the three models on the same test items -> PGR with a percentile
    bootstrap interval, and each accuracy's interval."""
    n = len(weak)
    if not n or len(strong_on_weak) != n or len(ceiling) != n:
        raise ValueError("need the three models' credits on the same, non-empty test items")
    rng = random.Random(seed)
    ratios, accuracies = [], {"weak": [], "strong_on_weak": [], "ceiling": []}
    for _ in range(samples):
        idx = [rng.randrange(n) for _ in range(n)]
        w, s, c = (mean([xs[i] for i in idx]) for xs in (weak, strong_on_weak, ceiling))
        for name, value in (("weak", w), ("strong_on_weak", s), ("ceiling", c)):
            accuracies[name].append(value)
        if (ratio := pgr(w, s, c)) is not None:
            ratios.append(ratio)
    tail = (1 - confidence) / 2
    interval = lambda xs: [percentile(xs, tail), percentile(xs, 1 - tail)] if xs else [None, None]
    point = {name: mean(xs) for name, xs in (("weak", weak), ("strong_on_weak", strong_on_weak), ("ceiling", ceiling))}
    return {
        "n": n,
        **point,
        "intervals": {name: interval(values) for name, values in accuracies.items()},
        "pgr": pgr(point["weak"], point["strong_on_weak"], point["ceiling"]),
        "pgr_interval": interval(ratios),
        "resamples_without_gap": samples - len(ratios),
        "samples": samples,
    }


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
