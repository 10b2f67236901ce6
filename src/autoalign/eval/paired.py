"""Paired comparison of two models on the same prompts: did the newer one follow more?

For per-prompt outcomes (followed / not) of a baseline and a model on the same prompts: the
difference in accuracy (points), a bootstrap 95% interval of it (prompts resampled with a fixed
seed), and the exact sign test on the prompts where the two disagree (McNemar's test, exact).
"""

from __future__ import annotations

import random

from scipy.stats import binomtest

FINAL_PAIRED = "ifeval_final_paired"
"""The paired stage comparing the loop's last model with M1 on the final IFEval set
(eval.ifeval_final_prompts); the summary's verdict looks for it by this name."""


def bootstrap_interval(deltas: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of per-prompt differences."""
    n = len(deltas)
    rng = random.Random(seed)
    means = sorted(sum(deltas[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def paired_mean_difference(baseline: list[float], model: list[float], resamples: int = 2000, seed: int = 0) -> dict:
    """Like paired_difference for per-prompt values in [0, 1] (a mean reward, an expected
    accuracy): the difference of means and its interval, in points."""
    if len(baseline) != len(model) or not baseline:
        raise ValueError("paired values need the same, non-empty list of prompts")
    deltas = [m - b for b, m in zip(baseline, model)]
    low, high = bootstrap_interval(deltas, resamples, seed)
    n = len(deltas)
    return {
        "prompts": n,
        "baseline": 100 * sum(baseline) / n,
        "model": 100 * sum(model) / n,
        "difference": 100 * sum(deltas) / n,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
    }


def paired_difference(baseline: list[bool], model: list[bool], resamples: int = 2000, seed: int = 0) -> dict:
    if len(baseline) != len(model) or not baseline:
        raise ValueError("paired outcomes need the same, non-empty list of prompts")
    deltas = [int(m) - int(b) for b, m in zip(baseline, model)]
    gained, lost = deltas.count(1), deltas.count(-1)
    p_value = binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
    compared = paired_mean_difference([int(b) for b in baseline], [int(m) for m in model], resamples, seed)
    return {**compared, "gained": gained, "lost": lost, "sign_test_p": p_value}


def ifeval_paired_metrics(rows: list[dict], baseline_rows: list[dict], held_out: list[str]) -> dict:
    """A model's scored IFEval answers against a baseline's (rows as the ifeval stage writes them:
    id, instruction_ids, strict, loose, response), on the prompts both answered: the paired
    prompt-level difference, strict and loose; instruction-level strict accuracy on the held-out
    constraint types apart from the others; mean answer length."""
    ours, theirs = {r["id"]: r for r in rows}, {r["id"]: r for r in baseline_rows}
    ids = sorted(set(ours) & set(theirs))

    def types(table: dict, wanted) -> float | None:
        hits = [ok for i in ids for t, ok in zip(table[i]["instruction_ids"], table[i]["strict"]) if wanted(t)]
        return sum(hits) / len(hits) if hits else None

    metrics: dict = {"prompts": len(ids), "held_out": list(held_out)}
    for level in ("strict", "loose"):
        outcome = lambda table: [all(table[i][level]) for i in ids]
        metrics[f"prompt_{level}"] = paired_difference(outcome(theirs), outcome(ours)) if ids else None
    for name, wanted in (("held_out", lambda t: t in held_out), ("trained", lambda t: t not in held_out)):
        count = sum(wanted(t) for i in ids for t in theirs[i]["instruction_ids"])
        metrics[f"instruction_strict_{name}"] = {
            "baseline": types(theirs, wanted),
            "model": types(ours, wanted),
            "instructions": count,
        }
    length = lambda table: sum(len(table[i]["response"]) for i in ids) / max(1, len(ids))
    metrics["mean_chars"] = {"baseline": length(theirs), "model": length(ours)}
    return metrics
