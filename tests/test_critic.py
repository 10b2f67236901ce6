"""The routed critic's numbers by hand: votes and uncertainty signals from its outputs, the
calibration slice, the calibration metrics and their cross-fitted estimate."""

from __future__ import annotations

import math

import pytest

from autoalign.config import CriticConfig
from autoalign.judges.critic import binary_entropy, margin_uncertainty, reward_verdict, verdict_from_outputs
from autoalign.judges.pairwise import PairwiseItem
from autoalign.stages.critic import (
    LabelledPair,
    calibration_metrics,
    cross_fitted,
    length_check,
    ranked_slice,
    shorter_is_better,
    uncertainty,
)
from autoalign.types import Candidate, RankedGroup


def out(text: str, p_a: float | None = None) -> Candidate:
    if p_a is None:
        return Candidate(text=text, num_tokens=3, finish_reason="stop")
    letter = text.rsplit(" ", 1)[-1]
    tokens = ["Winner", ":", " " + letter]
    top = [{"Winner": 0.0}, {":": 0.0}, {" A": math.log(p_a), " B": math.log(1 - p_a)}]
    return Candidate(text=text, num_tokens=3, finish_reason="stop", tokens=tokens, top_logprobs=top)


A, B = "Fine.\nWinner: A", "Fine.\nWinner: B"


def test_a_consistent_critic_is_certain():
    # Straight order shows first as A, swapped shows it as B: all four outputs name `first`.
    v = verdict_from_outputs([out(A), out(A)], [out(B), out(B)], ["x", "y"])
    assert v.winner == "first" and v.votes == {"first": 4, "second": 0, "none": 0}
    assert v.signals == {"disagreement": 0.0, "order_flip": 0.0, "entropy": None}
    assert v.critique == A


def test_position_bias_is_an_order_flip_and_no_verdict():
    v = verdict_from_outputs([out(A), out(A)], [out(A), out(A)], ["x", "y"])
    assert v.winner is None and v.votes == {"first": 2, "second": 2, "none": 0}
    assert v.signals["disagreement"] == 1.0 and v.signals["order_flip"] == 1.0
    assert uncertainty(v, ["disagreement"]) == 1.0  # no verdict: as unsure as can be
    assert v.critique == ""


def test_mixed_votes_and_an_unparsed_output():
    # straight: first, second; swapped: first ("B"), none.
    v = verdict_from_outputs([out(A), out(B)], [out(B), out("I cannot tell")], ["x", "y"])
    assert v.winner == "first" and v.votes == {"first": 2, "second": 1, "none": 1}
    assert v.signals["disagreement"] == pytest.approx(1 - 1 / 4)
    assert v.signals["order_flip"] == pytest.approx(abs(0.5 - 1.0))
    assert uncertainty(v, ["disagreement", "order_flip"]) == pytest.approx((0.75 + 0.5) / 2)


def test_verdict_token_entropy():
    assert binary_entropy(0.5) == 1.0 and binary_entropy(1.0) == 0.0
    h8 = -(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2))
    v = verdict_from_outputs([out(A, 0.8)], [out(B, 0.5)], ["x", "y"])
    assert v.signals["entropy"] == pytest.approx((h8 + 1.0) / 2)  # 0.7219 and 1 bit


def test_a_verdict_copied_from_an_answer_is_not_counted():
    v = verdict_from_outputs([out("Winner: A")], [out("Winner: A")], ["Winner: A", "plain"])
    assert v.votes == {"first": 0, "second": 0, "none": 2} and v.winner is None
    assert v.signals["order_flip"] == 1.0


def test_ranked_slice_pairs_differently_scored_answers_and_balances_positions():
    groups = [RankedGroup(f"q{g}", ["a", "b", "c"], [3.0, 1.0, 1.0]) for g in range(20)]
    pairs = ranked_slice(groups, size=30, seed=0)
    assert len(pairs) == 30  # each group has 2 usable pairs (b and c tie): 40 to draw from
    for p in pairs:
        better = p.item.first if p.truth == "first" else p.item.second
        assert better == "a" and {p.item.first, p.item.second} in ({"a", "b"}, {"a", "c"})
    firsts = sum(p.truth == "first" for p in pairs)
    assert 8 <= firsts <= 22  # the better answer is not always shown first
    assert ranked_slice(groups, size=30, seed=0) == pairs  # seeded


def rows(values, correct):
    return [
        {"uncertainty": u, "correct": ok, "winner": "first", "signals": {"disagreement": u, "order_flip": 0.0}}
        for u, ok in zip(values, correct)
    ]


def test_calibration_metrics_by_hand():
    # Sorted by uncertainty: 8 right, then 1 wrong, then 1 right, then 2 wrong.
    values = [0.1] * 8 + [0.5, 0.6, 0.8, 0.9]
    correct = [True] * 8 + [False, True, False, False]
    cfg = CriticConfig(target_error=0.15, signals=["disagreement", "order_flip"])
    m = calibration_metrics(rows(values, correct), cfg, seed=0)
    # Trust <= 0.6: 10 items, 1 wrong = 10% error at 10/12 coverage; <= 0.8 would be 2/11 = 18%.
    assert m["trust_threshold"] == 0.6 and m["coverage"] == pytest.approx(10 / 12) and m["error"] == 0.1
    lo, hi = m["error_interval"]
    assert 0.0 < lo < 0.1 < hi < 0.5
    assert m["accuracy"] == pytest.approx(9 / 12) and m["slice"] == 12
    assert [p["coverage"] for p in m["curve"]] == pytest.approx([8 / 12, 9 / 12, 10 / 12, 11 / 12, 1.0])
    # order_flip is 0 everywhere: alone it cannot separate anything, so it trusts all or nothing.
    assert m["per_signal"]["order_flip"] == {"coverage": 0.0, "error": 0.0}
    assert m["per_signal"]["disagreement"]["coverage"] == pytest.approx(10 / 12)


def test_the_length_check_splits_the_critics_accuracy_by_the_shortcut():
    short, long_ = "ok", "a much longer answer"
    pairs = [
        LabelledPair("a", PairwiseItem([], short, long_), "first"),  # the shorter is better
        LabelledPair("b", PairwiseItem([], long_, short), "second"),  # the shorter is better
        LabelledPair("c", PairwiseItem([], long_, short), "first"),  # the longer is better
        LabelledPair("d", PairwiseItem([], short, short + "!"), "second"),  # the longer is better
        LabelledPair("e", PairwiseItem([], "ab", "cd"), "first"),  # as long: not counted
    ]
    assert [shorter_is_better(p) for p in pairs] == [True, True, False, False, None]
    # A critic that always prefers the shorter answer (the second of an equally long pair).
    correct = [True, True, False, False, False]
    rows = [{"correct": ok, "shorter_is_better": shorter_is_better(p)} for p, ok in zip(pairs, correct)]
    assert length_check(rows) == {
        "shorter_is_better": 0.5,
        "critic_where_shorter_is_better": 1.0,
        "critic_where_longer_is_better": 0.0,
        "pairs": [2, 2],
    }


def test_cross_fitting_measures_the_threshold_on_items_it_was_not_set_on():
    values = [i / 20 for i in range(20)]
    correct = [True] * 20
    est = cross_fitted(values, correct, 0.1, seed=1)
    # Each fold trusts up to the highest uncertainty it saw; the other fold's items above that are not trusted.
    assert (
        est["error"] == 0.0 and 0.9 <= est["coverage"] < 1.0 and est["trusted"] == pytest.approx(20 * est["coverage"])
    )
    # Pooled over many splits: one wrong item among the most certain is met in about half of the held folds.
    one_wrong = cross_fitted(values, [i != 0 for i in range(20)], 0.0, seed=1, repeats=400)
    assert 0.0 < one_wrong["error"] < 0.2 and one_wrong["repeats"] == 400
    nothing = cross_fitted(values, [False] * 20, 0.1, seed=1)
    assert nothing == {"coverage": 0.0, "error": None, "trusted": 0, "repeats": 100}
    with pytest.raises(ValueError, match="calibration slice is empty"):
        calibration_metrics([], CriticConfig(), seed=0)


def test_a_reward_models_margin_as_uncertainty_by_hand():
    assert margin_uncertainty(0.0) == 1.0
    # sigmoid(ln 3) = 3/4: the verdict's probability is halfway from a coin to certainty.
    assert margin_uncertainty(math.log(3)) == pytest.approx(0.5)
    assert margin_uncertainty(-math.log(3)) == pytest.approx(0.5)
    assert margin_uncertainty(20.0) < 1e-8
    s = 1 / (1 + math.exp(-1.3))
    assert margin_uncertainty(1.3) == pytest.approx(2 * min(s, 1 - s))
    first, second, none = reward_verdict(0.7), reward_verdict(-2.0), reward_verdict(0.0)
    assert (first.winner, second.winner, none.winner) == ("first", "second", None)
    assert first.signals == {"margin": pytest.approx(1 - math.tanh(0.35))}
    assert uncertainty(none, ["margin"]) == 1.0  # no verdict: as unsure as can be
    assert uncertainty(second, ["margin"]) == pytest.approx(1 - math.tanh(1.0))
    assert "margin -2.00" in second.critique


def test_each_critic_kind_has_its_own_signals():
    assert CriticConfig().signals == ["disagreement", "order_flip", "entropy"]
    assert CriticConfig(kind="reward_model").signals == ["margin"]  # the pairwise default becomes the margin
    with pytest.raises(
        ValueError, match=r"critic.kind=reward_model measures the signals \['margin'\], not \['entropy'\]"
    ):
        CriticConfig(kind="reward_model", signals=["entropy"])
    with pytest.raises(ValueError, match=r"critic.kind=pairwise measures .* not \['margin'\]"):
        CriticConfig(signals=["margin", "entropy"])
    assert CriticConfig().key() == {}  # a pairwise critic's stage keys are as before the reward model came
