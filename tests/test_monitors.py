"""Collapse monitors on hand-made samples: identical answers vs varied ones."""

import pytest

from autoalign.eval.monitors import distinct_n, sample_monitors, self_bleu
from autoalign.types import Candidate


def test_distinct_n_by_hand():
    # unigrams: a b a b c -> 3 unique of 5; bigrams: ab ba ab bc -> 3 unique of 4
    assert distinct_n(["a b a", "b c"], 1) == pytest.approx(3 / 5)
    assert distinct_n(["a b a b c"], 2) == pytest.approx(3 / 4)
    assert distinct_n([""], 1) is None


def test_self_bleu_identical_vs_disjoint():
    same = "the quick brown fox jumps over the lazy dog"
    assert self_bleu([[same, same, same]]) == pytest.approx(1.0)
    assert self_bleu([["alpha beta gamma delta", "one two three four"]]) == pytest.approx(0.0)
    assert self_bleu([["only one answer"]]) is None


def test_sample_monitors_flag_a_collapsed_iteration():
    varied = {
        "p1": [
            Candidate("Paris is the capital of France.", 8, "stop"),
            Candidate("France's capital city is Paris, on the Seine.", 11, "stop"),
        ],
        "p2": [
            Candidate("Water boils at 100 degrees Celsius at sea level.", 12, "stop"),
            Candidate("At sea level, water boils at 100 C.", 10, "stop"),
        ],
    }
    loop = "I am sorry I am sorry I am sorry I am sorry"
    collapsed = {
        p: [Candidate(loop, 64, "length"), Candidate(loop, 64, "length"), Candidate.failed("timeout")]
        for p in ("p1", "p2")
    }
    good, bad = sample_monitors(varied), sample_monitors(collapsed)
    assert bad["answers"] == 4  # failed remote answers are not samples
    assert bad["truncated_rate"] == 1.0 and good["truncated_rate"] == 0.0
    assert bad["self_bleu"] == pytest.approx(1.0) and good["self_bleu"] < 0.5
    assert bad["distinct_2"] == pytest.approx(3 / 44) and good["distinct_2"] > 0.8
    assert good["mean_tokens"] == pytest.approx(41 / 4)


def test_no_answers_gives_every_field_as_none():
    none = sample_monitors({"p1": [Candidate.failed("timeout")], "p2": []})
    assert none == {
        "answers": 0,
        "mean_tokens": None,
        "mean_chars": None,
        "truncated_rate": None,
        "distinct_1": None,
        "distinct_2": None,
        "self_bleu": None,
    }
