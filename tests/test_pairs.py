from autoalign.pairs import JudgedCandidates, best_vs_worst
from autoalign.types import Candidate, Judgment, Pair, Prompt


def group(pid, scored):
    prompt = Prompt(pid, [{"role": "user", "content": f"question {pid}"}])
    cands = [Candidate(text=f"{pid}-answer-{i}", num_tokens=3, finish_reason="stop") for i in range(len(scored))]
    judgments = [Judgment(score=s, raw=[""], parsed=s is not None) for s in scored]
    return JudgedCandidates(prompt, cands, judgments)


def test_best_vs_worst_picks_extremes_and_keeps_scores():
    pairs, dropped = best_vs_worst([group("a", [3, 5, 1, 4])])
    assert len(pairs) == 1 and not dropped
    p = pairs[0]
    assert (p.chosen, p.rejected) == ("a-answer-1", "a-answer-2")
    assert (p.chosen_score, p.rejected_score, p.margin) == (5, 1, 4)
    assert p.prompt == [{"role": "user", "content": "question a"}]


def test_ties_none_scores_and_single_candidates_are_dropped_and_counted():
    groups = [
        group("tie", [3, 3, 3]),
        group("nones", [None, 4, None]),  # only one valid score
        group("single", [5]),
        group("all_none", [None, None]),
        group("ok_with_none", [None, 2, 4]),
    ]
    pairs, dropped = best_vs_worst(groups)
    assert [p.prompt_id for p in pairs] == ["ok_with_none"]
    assert pairs[0].chosen == "ok_with_none-answer-2" and pairs[0].rejected == "ok_with_none-answer-1"
    assert dropped == {"tie": 1, "fewer_than_two_scores": 3}


def test_min_margin_and_equal_best_is_deterministic():
    pairs, dropped = best_vs_worst([group("small", [3, 4]), group("big", [5, 1, 5, 1])], min_margin=1)
    assert [p.prompt_id for p in pairs] == ["big"]
    assert pairs[0].chosen == "big-answer-0" and pairs[0].rejected == "big-answer-1"
    assert dropped == {"margin_too_small": 1}


def test_pair_round_trips_in_conversational_format():
    p = Pair("x", [{"role": "user", "content": "q"}], "good", "bad", 4.0, 1.0, "self_reward")
    row = p.to_dict()
    assert row["chosen"] == [{"role": "assistant", "content": "good"}]
    assert row["margin"] == 3.0
    assert Pair.from_dict(row) == p
