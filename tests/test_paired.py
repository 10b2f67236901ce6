"""The paired comparison's numbers, by hand."""

import pytest

from autoalign.eval.paired import paired_difference


def test_identical_outcomes_differ_by_nothing():
    d = paired_difference([True, False, True, False], [True, False, True, False])
    assert d["difference"] == 0 and d["ci_low"] == 0 and d["ci_high"] == 0 and d["sign_test_p"] == 1.0


def test_three_gains_out_of_ten():
    d = paired_difference([False] * 10, [True] * 3 + [False] * 7)
    assert d["baseline"] == 0 and d["model"] == 30 and d["difference"] == 30
    assert d["gained"] == 3 and d["lost"] == 0
    assert d["sign_test_p"] == pytest.approx(0.25)  # two-sided: 2 x 0.5^3
    assert 0 <= d["ci_low"] <= 30 <= d["ci_high"] <= 70


def test_gains_and_losses_cancel_in_the_difference_not_in_the_test():
    d = paired_difference([True] * 5 + [False] * 5, [False] * 5 + [True] * 5)
    assert d["difference"] == 0 and d["gained"] == 5 and d["lost"] == 5
    assert d["sign_test_p"] == pytest.approx(1.0)
    assert d["ci_low"] < 0 < d["ci_high"]


def test_mismatched_lists_are_an_error():
    with pytest.raises(ValueError):
        paired_difference([True], [True, False])


def test_ifeval_rows_are_paired_by_prompt_and_split_by_held_out_type():
    from autoalign.eval.paired import ifeval_paired_metrics

    row = lambda i, ids, strict: {"id": i, "instruction_ids": ids, "strict": strict, "loose": strict}
    row_text = lambda r, text: {**r, "response": text}
    base = [row_text(row("a", ["x", "h"], [False, True]), "abcd"), row_text(row("b", ["x"], [False]), "ab")]
    model = [row_text(row("a", ["x", "h"], [True, True]), "ab"), row_text(row("b", ["x"], [False]), "ab")]
    model.append(row_text(row("c", ["x"], [True]), "only the model answered this one"))
    m = ifeval_paired_metrics(model, base, held_out=["h"])
    assert m["prompts"] == 2 and m["prompt_strict"]["difference"] == 50 and m["prompt_strict"]["gained"] == 1
    assert m["instruction_strict_held_out"] == {"baseline": 1.0, "model": 1.0, "instructions": 1}
    assert m["instruction_strict_trained"] == {"baseline": 0.0, "model": 0.5, "instructions": 2}
    assert m["mean_chars"] == {"baseline": 3.0, "model": 2.0}


def test_fractional_values_pair_like_booleans():
    from autoalign.eval.paired import paired_mean_difference

    d = paired_mean_difference([0.25, 0.5, 0.0, 1.0], [0.75, 0.5, 0.5, 1.0])
    assert d["baseline"] == pytest.approx(43.75) and d["model"] == pytest.approx(68.75)
    assert d["difference"] == pytest.approx(25.0)  # (0.5 + 0 + 0.5 + 0) / 4
    assert 0 <= d["ci_low"] <= 25 <= d["ci_high"] <= 50  # every resampled mean lies in [0, 0.5]
    booleans = [True, False, True, False, False], [True, True, True, False, True]
    same = paired_difference(*booleans)
    as_floats = paired_mean_difference(*([float(x) for x in side] for side in booleans))
    assert {k: same[k] for k in as_floats} == pytest.approx(as_floats)
    with pytest.raises(ValueError):
        paired_mean_difference([], [])
