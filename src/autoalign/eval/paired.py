"""Paired comparison of two models on the same prompts: did the newer one follow more?

For per-prompt outcomes (followed / not) of a baseline and a model on the same prompts: the
difference in accuracy (points), a bootstrap 95% interval of it (prompts resampled with a fixed
seed), and the exact sign test on the prompts where the two disagree (McNemar's test, exact).
"""

from __future__ import annotations

import random

from scipy.stats import binomtest


def paired_difference(baseline: list[bool], model: list[bool], resamples: int = 2000, seed: int = 0) -> dict:
    if len(baseline) != len(model) or not baseline:
        raise ValueError("paired outcomes need the same, non-empty list of prompts")
    n = len(baseline)
    deltas = [int(m) - int(b) for b, m in zip(baseline, model)]
    gained, lost = deltas.count(1), deltas.count(-1)
    rng = random.Random(seed)
    means = sorted(sum(deltas[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    p_value = binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
    return {
        "prompts": n,
        "baseline": 100 * sum(baseline) / n,
        "model": 100 * sum(model) / n,
        "difference": 100 * sum(deltas) / n,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
        "gained": gained,
        "lost": lost,
        "sign_test_p": p_value,
    }
