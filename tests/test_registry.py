"""A new feedback source, loss, judge or backend is one file plus one registry entry: nothing else in
the package names it."""

from __future__ import annotations

import pytest

from autoalign import registry
from autoalign.config import ConfigError
from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate
from test_loop_tiny import make_verifier, tiny_config


def test_a_toy_feedback_source_runs_the_loop(tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown feedback source 'toy_length'"):
        tiny_config(tiny_model_dir, tmp_path, "loop=toy_length")
    monkeypatch.setitem(registry.FEEDBACK, "toy_length", registry.FeedbackEntry("toy_feedback", min_samples=2))
    with pytest.raises(ConfigError, match="toy_length compares sample.n candidates per prompt: sample.n must be >= 2"):
        tiny_config(tiny_model_dir, tmp_path, "loop=toy_length", "sample.n=1")
    cfg = tiny_config(tiny_model_dir, tmp_path, "loop=toy_length", "iterations=1", "eval.enabled=false")
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    pairs = read_jsonl(tmp_path / "tiny/iter_1/pairs/data.jsonl")
    metrics = read_json(tmp_path / "tiny/iter_1/pairs/metrics.json")
    assert pairs and metrics["by_source"] == {"toy_length": len(pairs)} and metrics["prompts"] == 6
    assert all(
        len(p["chosen"][0]["content"]) > len(p["rejected"][0]["content"]) and p["source"] == "toy_length" for p in pairs
    )
    assert (tmp_path / "tiny/iter_1/dpo/model/config.json").exists()


def test_a_toy_reference_free_loss_trains_without_reference_logprobs(tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown preference loss 'toy_margin'"):
        tiny_config(tiny_model_dir, tmp_path, "dpo.loss=toy_margin")
    monkeypatch.setitem(registry.PREFERENCE_LOSSES, "toy_margin", "toy_loss:ToyMarginLoss")
    cfg = tiny_config(tiny_model_dir, tmp_path, "dpo.loss=toy_margin", "iterations=1", "eval.enabled=false")
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    dpo = tmp_path / "tiny/iter_1/dpo"
    history = read_jsonl(dpo / "data.jsonl")
    assert history[0]["loss"] != pytest.approx(0.6931, abs=1e-3)  # no reference: not ln 2 at the start
    assert not list(dpo.glob("reference_logps-*.json")) and (dpo / "model/config.json").exists()


def test_a_toy_generation_backend_serves_the_loop(tiny_model_dir, tmp_path, monkeypatch):
    import toy_backend

    with pytest.raises(ConfigError, match="unknown generation backend 'toy_echo'"):
        tiny_config(tiny_model_dir, tmp_path, "model.backend=toy_echo")
    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    cfg = tiny_config(tiny_model_dir, tmp_path, "model.backend=toy_echo", "iterations=1")
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    candidates = read_jsonl(tmp_path / "tiny/iter_1/candidates/data.jsonl")
    assert all(c["text"].startswith("echo ") for row in candidates for c in row["candidates"])
    assert read_json(tmp_path / "tiny/iter_1/pairs/metrics.json")["pairs"] > 0
    assert (tmp_path / "tiny/iter_1/dpo/model/config.json").exists()  # training still uses transformers
    assert read_jsonl(tmp_path / "tiny/iter_1/eval_answers_M2/data.jsonl")[0]["candidates"][0]["text"].startswith(
        "echo "
    )
    assert "echo M1" in toy_backend.closed and "echo M2" in toy_backend.closed  # the pool closed them


def test_a_toy_programmatic_judge_judges_the_feedback(tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown verifier 'toy_brevity'"):
        tiny_config(tiny_model_dir, tmp_path, "judge.verifier=toy_brevity")
    monkeypatch.setitem(registry.VERIFIERS, "toy_brevity", "toy_judge:make")
    cfg = tiny_config(tiny_model_dir, tmp_path, "judge.verifier=toy_brevity", "iterations=1", "eval.enabled=false")
    iterate.run(cfg, log=lambda m: None)
    judgments = read_json(tmp_path / "tiny/iter_1/judgments/metrics.json")
    assert judgments["judge_kind"] == "verifier" and judgments["judge_role"] == "verifier"
    assert judgments["parsed"] == judgments["judged"] == 24
    pairs = read_jsonl(tmp_path / "tiny/iter_1/pairs/data.jsonl")
    words = lambda turns: len(turns[-1]["content"].split())
    assert pairs and all(words(p["chosen"]) < words(p["rejected"]) for p in pairs)
