"""Judge-vs-gold agreement metrics on hand-computed cases, correlations checked against scipy."""

import pytest
from scipy.stats import kendalltau, spearmanr

from autoalign.eval.reward_modeling import agreement_metrics
from autoalign.types import RankedGroup


def group(*gold):
    return RankedGroup("p", [f"r{i}" for i in range(len(gold))], list(gold))


def test_perfect_judge():
    groups = [group(5, 3, 1), group(4, 2)]
    out = agreement_metrics(groups, [[5, 3, 1], [4, 2]])
    assert out["pairwise_accuracy"] == 1.0
    assert out["exact_match"] == 1.0
    assert out["five_best"] == 1.0
    assert out["coverage"] == 1.0
    assert out["spearman"] == pytest.approx(1.0)


def test_hand_computed_case_with_ties_and_unparsed():
    groups = [group(5, 3, 1), group(4, 4, 2), group(3)]
    scores = [
        [4, 4, 1],  # pairs (5,3) tied -> miss; (5,1) ok; (3,1) ok
        [5, None, 1],  # gold tie (4,4) skipped; (4,2) ok; (4',2) unscored
        [5],
    ]  # single response: scored 5 and is its group's best
    out = agreement_metrics(groups, scores)
    assert out["pairs"] == 4
    assert out["pairs_unscored"] == 1
    assert out["pairs_model_tied"] == 1
    assert out["pairwise_accuracy"] == pytest.approx(3 / 4)
    # model 5s: group 2 first response (gold 4 = best, tied max) and group 3 -> 2/2
    assert (out["scored_five"], out["five_best"]) == (2, 1.0)
    # group 1 has a model tie where gold orders; group 2 has an unparsed score; group 3 has one response
    assert out["exact_match"] == 0.0
    assert out["coverage"] == pytest.approx(6 / 7)
    gold = [5, 3, 1, 4, 2, 3]
    model = [4, 4, 1, 5, 1, 5]
    assert out["spearman"] == pytest.approx(spearmanr(gold, model).statistic)
    assert out["kendall_tau_b"] == pytest.approx(kendalltau(gold, model).statistic)


def test_reversed_judge_and_constant_scores():
    out = agreement_metrics([group(1, 2, 3)], [[3, 2, 1]])
    assert out["pairwise_accuracy"] == 0.0
    assert out["spearman"] == pytest.approx(-1.0)
    flat = agreement_metrics([group(1, 2, 3)], [[2, 2, 2]])
    assert flat["spearman"] is None and flat["pairs_model_tied"] == 3 and flat["pairwise_accuracy"] == 0.0


def test_pooled_groups_rank_absolute_scores_across_prompts():
    from autoalign.eval.reward_modeling import pool_groups

    groups, scores = pool_groups([group(5), group(1), group(3)], [[4], [2], [None]])
    out = agreement_metrics(groups, scores)
    assert out["groups"] == 1 and out["pairs"] == 1 and out["pairs_unscored"] == 2
    assert out["pairwise_accuracy"] == 1.0


def test_ranked_loaders(tmp_path):
    import json

    from autoalign.data.ranked import load_ranked
    from autoalign.io import DataError

    path = tmp_path / "ranked.jsonl"
    path.write_text(json.dumps({"prompt": "q", "responses": ["a", "b"], "ranks": [1, 0]}) + "\n")
    [g] = load_ranked(str(path))
    assert g.gold == [-1.0, 0.0]  # rank 0 = best = highest score
    assert len(load_ranked("builtin:seed_eft.jsonl")) == 100
    path.write_text(json.dumps({"prompt": "q", "responses": ["a", "b"], "scores": [1]}) + "\n")
    with pytest.raises(DataError, match=r"ranked.jsonl:1: field 'responses' has 2 entries"):
        load_ranked(str(path))


def test_expected_scores_count_as_five_when_they_round_to_five():
    out = agreement_metrics([group(5, 1), group(2, 4)], [[4.6, 1.2], [4.5, 3.9]])
    assert out["scored_five"] == 2 and out["five_best"] == 0.5  # 4.6 is its group's best; 4.5 is not
