"""The self-refine and debate loops end to end (the toy echo backend generates, so every answer
finishes; the letter-variety verifier judges): their stages hold what the pure functions give,
and the pairs follow from the recorded rounds and verdicts."""

from __future__ import annotations

import pytest

from autoalign import registry
from autoalign.judges.base import JudgeItem
from autoalign.pairs import NoPairsError
from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate
from test_loop_tiny import LetterVarietyJudge, make_verifier, tiny_config

TOY = ["iterations=1", "model.backend=toy_echo", "eval.enabled=false"]


def test_self_refine_loop_prefers_a_better_revision_over_the_first_answer(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    cfg = tiny_config(tiny_model_dir, tmp_path, *TOY, "loop=self_refine", "sample.n=1", "self_refine.max_rounds=2")
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny/iter_1"
    first = {r["id"]: r["candidates"][0]["text"] for r in read_jsonl(run / "candidates/data.jsonl")}
    rows = read_jsonl(run / "self_refinements/data.jsonl")
    assert sorted(r["id"] for r in rows) == sorted(first)
    judge = LetterVarietyJudge()
    for row in rows:
        texts = [r["text"] for r in row["rounds"]]
        assert texts[0] == first[row["id"]] and 1 <= len(texts) <= 3
        scores = [r["score"] for r in row["rounds"]]
        assert scores == [
            j.score for j in judge.judge([JudgeItem([{"role": "user", "content": ""}], t) for t in texts])
        ]
        assert row["best"] == scores.index(max(scores))
        # each revision that did not beat the best so far ended the refinement
        if row["stopped"] == "no_improvement":
            assert scores[-1] <= max(scores[:-1])
    pairs = read_jsonl(run / "pairs_self_refine/data.jsonl")
    improved = {r["id"]: r for r in rows if r["best"] > 0}
    assert sorted(p["prompt_id"] for p in pairs) == sorted(improved)
    for p in pairs:
        row = improved[p["prompt_id"]]
        assert p["chosen"][0]["content"] == row["rounds"][row["best"]]["text"]
        assert p["rejected"][0]["content"] == row["rounds"][0]["text"]
    metrics = read_json(run / "self_refinements/metrics.json")
    assert metrics["improved"] == len(improved) and metrics["prompts"] == len(rows)


def test_debate_loop_turns_verdicts_into_pairs(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    cfg = tiny_config(tiny_model_dir, tmp_path, *TOY, "loop=debate", "sample.n=2", "debate.rounds=2")
    with pytest.raises(NoPairsError, match="no preference pairs"):  # an echoing judge writes no "Winner:" line
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny/iter_1"
    samples = {r["id"]: [c["text"] for c in r["candidates"]] for r in read_jsonl(run / "candidates/data.jsonl")}
    debates = read_jsonl(run / "debates/data.jsonl")
    assert debates and all(d["first"] == samples[d["id"]][0] and d["second"] == samples[d["id"]][1] for d in debates)
    for d in debates:
        assert [(t["round"], t["defends"]) for t in d["turns"]] == [
            (1, "first"),
            (1, "second"),
            (2, "first"),
            (2, "second"),
        ]
        assert d["turns"][0]["text"].startswith("echo Two answers to the question")  # the debate prompt, echoed
        assert d["preference"]["winner"] is None  # an echo has no verdict line
    pairs = read_json(run / "pairs_debate/metrics.json")
    assert pairs["pairs"] == 0 and pairs["dropped"] == {"unparsed": len(debates)} | (
        {"no_two_answers": len(samples) - len(debates)} if len(samples) > len(debates) else {}
    )
    assert read_json(run / "debates/metrics.json")["unparsed"] == len(debates)
