"""Win rate against a baseline, the AlpacaEval convention, and its length-controlled variant.

Per prompt a preference p in [1, 2]: 1 = the baseline's answer is better, 2 = the model's,
1.5 = a tie. With token log-probabilities p = 1 + P(model better), the judge's probability
averaged over both presentation orders; otherwise the hard verdict. Win rate = mean(p - 1) x 100,
with the standard error of that mean. Prompts whose verdict did not parse have no p: they are
counted in `dropped`, never silently left out.

Length control: judges prefer longer answers, so a model can "win" by rambling. Fit
    logit P(model better) = theta + phi * tanh(d / sd(d)) [+ psi * difficulty]
by maximum likelihood on the soft targets p - 1, where d = model length - baseline length, and
report 100 x the mean predicted probability with the length term set to zero. The instruction
term is optional: a per-prompt difficulty (e.g. how often other models beat the same baseline on
that prompt); with a single model there is nothing to estimate it from, and the fit has only the
intercept and the length term. A small L2 penalty keeps the fit finite when every prompt is
won or lost. The standard error comes from a seeded bootstrap over prompts.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from autoalign.types import Preference

L2_PENALTY = 1e-3


def preference_value(pref: Preference, model_is_first: bool) -> float | None:
    """p in [1, 2] for the model, or None when the verdict did not parse."""
    if pref.winner is None:
        return None
    p_first = pref.p_first if pref.p_first is not None else {"first": 1.0, "second": 0.0, "tie": 0.5}[pref.winner]
    return 1.0 + (p_first if model_is_first else 1.0 - p_first)


def win_rate(values: list[float | None]) -> dict:
    kept = np.array([v for v in values if v is not None], dtype=float)
    out = {
        "prompts": len(values),
        "dropped": len(values) - len(kept),
        "n": len(kept),
        "win_rate": None,
        "standard_error": None,
    }
    if len(kept):
        wins = kept - 1.0
        out["win_rate"] = float(wins.mean() * 100)
        out["standard_error"] = float(wins.std(ddof=1) / math.sqrt(len(wins)) * 100) if len(wins) > 1 else None
    return out


def _fit(target: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Logistic regression on soft targets in [0, 1]; features include the intercept column."""

    def loss_and_grad(w):
        z = features @ w
        nll = -(target * log_expit(z) + (1 - target) * log_expit(-z)).mean() + L2_PENALTY * (w @ w)
        grad = features.T @ (expit(z) - target) / len(target) + 2 * L2_PENALTY * w
        return nll, grad

    return minimize(loss_and_grad, np.zeros(features.shape[1]), jac=True, method="L-BFGS-B").x


def _features(length_term: np.ndarray, difficulty: np.ndarray | None) -> np.ndarray:
    columns = [np.ones_like(length_term), length_term]
    if difficulty is not None:
        columns.append(difficulty)
    return np.column_stack(columns)


def _lc_estimate(target, length_term, difficulty) -> float:
    w = _fit(target, _features(length_term, difficulty))
    # Predict with zero length difference, averaging the instruction term over the prompts.
    z = w[0] + (w[2] * difficulty if difficulty is not None else 0.0)
    return float(np.mean(expit(z)) * 100)


def length_controlled_win_rate(
    values: list[float | None],
    model_lengths: list[int],
    baseline_lengths: list[int],
    difficulty: list[float] | None = None,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict:
    keep = [i for i, v in enumerate(values) if v is not None]
    out = {
        "n": len(keep),
        "dropped": len(values) - len(keep),
        "lc_win_rate": None,
        "lc_standard_error": None,
        "length_coefficient": None,
    }
    if len(keep) < 2:
        return out
    target = np.array([values[i] for i in keep], dtype=float) - 1.0
    diff = np.array([model_lengths[i] - baseline_lengths[i] for i in keep], dtype=float)
    sd = diff.std(ddof=1)
    length_term = np.tanh(diff / sd) if sd > 0 else np.zeros_like(diff)
    diff_feature = None if difficulty is None else np.array([difficulty[i] for i in keep], dtype=float)
    out["lc_win_rate"] = _lc_estimate(target, length_term, diff_feature)
    out["length_coefficient"] = float(_fit(target, _features(length_term, diff_feature))[1])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(keep), len(keep))
        samples.append(_lc_estimate(target[idx], length_term[idx], None if diff_feature is None else diff_feature[idx]))
    out["lc_standard_error"] = float(np.std(samples, ddof=1))
    return out
