"""Win rates by hand: the AlpacaEval mean-preference convention and length control."""

import math

import numpy as np
import pytest

from autoalign.eval.win_rate import length_controlled_win_rate, preference_value, win_rate
from autoalign.types import Preference


def pref(winner, p_first=None):
    return Preference(winner=winner, verdicts=[], raw=[], p_first=p_first)


def test_preference_value_from_verdicts_and_probabilities():
    assert preference_value(pref("first"), model_is_first=True) == 2.0
    assert preference_value(pref("first"), model_is_first=False) == 1.0
    assert preference_value(pref("tie"), model_is_first=True) == 1.5
    assert preference_value(pref(None), model_is_first=True) is None
    # probability-weighted: P(first better) = 0.8, model second -> p = 1.2
    assert preference_value(pref("first", 0.8), model_is_first=False) == pytest.approx(1.2)


def test_win_rate_mean_and_standard_error_by_hand():
    # wins: 1, 0, 0.5, 1 -> mean 0.625; sample sd = sqrt(((.375)^2+(.625)^2+(.125)^2+(.375)^2)/3)
    out = win_rate([2.0, 1.0, 1.5, 2.0, None])
    assert out["win_rate"] == pytest.approx(62.5)
    sd = math.sqrt((0.375**2 + 0.625**2 + 0.125**2 + 0.375**2) / 3)
    assert out["standard_error"] == pytest.approx(sd / 2 * 100)
    assert (out["n"], out["dropped"], out["prompts"]) == (4, 1, 5)


def test_length_control_equals_win_rate_when_lengths_match():
    values = [2.0, 1.0, 2.0, 1.5, 2.0, 1.0, 1.7]
    out = length_controlled_win_rate(values, [100] * 7, [100] * 7)
    # No length variation: the fit is the intercept alone, whose MLE is logit(mean); the tiny
    # L2 penalty moves it by well under a point.
    assert out["lc_win_rate"] == pytest.approx(win_rate(values)["win_rate"], abs=0.2)


def test_length_control_discounts_wins_that_come_from_length():
    rng = np.random.default_rng(0)
    diff = rng.normal(30, 50, 200)
    # The model's answers run longer, and it wins exactly when its answer is longer: a pure
    # length effect, no quality difference.
    values = [2.0 if d > 0 else 1.0 for d in diff]
    raw = win_rate(values)["win_rate"]
    out = length_controlled_win_rate(values, [int(300 + d) for d in diff], [300] * 200)
    assert raw > 70
    assert out["length_coefficient"] > 3
    assert 45 < out["lc_win_rate"] < 60  # at equal length, about a coin flip
    assert 0 < out["lc_standard_error"] < 10


def test_length_control_drops_unparsed_and_counts_them():
    out = length_controlled_win_rate([2.0, None, 1.0, 1.5], [10, 20, 30, 40], [20, 20, 20, 20])
    assert (out["n"], out["dropped"]) == (3, 1)
