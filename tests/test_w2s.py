"""Weak-to-strong: PGR arithmetic and its bootstrap by hand, and `autoalign w2s` end to end on
tiny models (answers from a varied echo backend, truth from the IFEval checkers)."""

from __future__ import annotations

import random

import pytest
from test_loop_tiny import FIX
from toy_backend import EchoGenerator
from typer.testing import CliRunner

from autoalign.cli import app as cli
from autoalign.eval.w2s import bootstrap_pgr, credit, percentile, pgr
from autoalign.generation.base import request_seed
from autoalign.io import read_json, read_jsonl
from autoalign.types import Candidate


class VariedGenerator(EchoGenerator):
    """The echo backend's answers in varied forms (lower or upper case, with or without a P.S.,
    commas, a title, several paragraphs), so the checkers tell a prompt's answers apart."""

    def generate(self, requests, params):
        out = []
        for messages, samples in zip(requests, super().generate(requests, params)):
            varied = []
            for k, c in enumerate(samples):
                rng = random.Random(request_seed(params.seed, messages, 100 + k))
                text = c.text.lower() if rng.random() < 0.5 else c.text.upper()
                if rng.random() < 0.5:
                    text = "<<a title>>\n\n" + text + "\n\n***\n\n" + text
                text += ", and more" if rng.random() < 0.5 else ""
                text += "\n\nP.S. that is all." if rng.random() < 0.5 else ""
                varied.append(Candidate(text=text, num_tokens=len(text.split()), finish_reason="stop"))
            out.append(varied)
        return out


def make_varied(pool, ref, batch_size):
    return VariedGenerator(f"varied {ref.label}")


def test_pgr_by_hand():
    assert pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)
    assert pgr(0.6, 0.55, 0.8) == pytest.approx(-0.25)  # worse than its supervisor
    assert pgr(0.7, 0.9, 0.7) is None  # no gap to recover


def test_credit():
    assert credit("first", "first") == 1.0 and credit("second", "first") == 0.0
    assert credit("tie", "first") == 0.5 and credit(None, "second") == 0.5
    assert credit(0.3, "first") == 1.0 and credit(-2.0, "first") == 0.0 and credit(0.0, "second") == 0.5


def test_bootstrap_interval_holds_the_point_and_is_paired():
    weak = [1.0] * 6 + [0.0] * 4  # 0.6
    strong = [1.0] * 7 + [0.0] * 3  # 0.7
    ceiling = [1.0] * 8 + [0.0] * 2  # 0.8
    r = bootstrap_pgr(weak, strong, ceiling, samples=500, seed=0)
    assert (r["weak"], r["strong_on_weak"], r["ceiling"]) == pytest.approx((0.6, 0.7, 0.8))
    assert r["pgr"] == pytest.approx(0.5)
    lo, hi = r["pgr_interval"]
    assert lo <= 0.5 <= hi and lo >= 0.0 and hi <= 1.0  # strong lies between weak and ceiling item by item
    assert r["resamples_without_gap"] > 0  # some resamples hold only items all three get right
    assert bootstrap_pgr(weak, strong, ceiling, samples=500, seed=0) == r  # seeded
    same = bootstrap_pgr(weak, weak, weak, samples=200)
    assert same["pgr"] is None and same["pgr_interval"] == [None, None]
    with pytest.raises(ValueError):
        bootstrap_pgr([1.0], [1.0, 0.0], [1.0])
    assert percentile([0.0, 1.0, 2.0, 3.0], 0.5) == 1.5


def test_w2s_end_to_end_on_tiny_models(tiny_model_dir, tmp_path, monkeypatch):
    from autoalign import registry

    monkeypatch.setitem(registry.BACKENDS, "toy_varied", "test_w2s:make_varied")
    args = [
        "w2s",
        "recipes/w2s.yaml",
        f"model.name={tiny_model_dir}",
        "model.backend=toy_varied",
        f"runs_dir={tmp_path}",
        "name=w2s_tiny",
        f"data.ift={FIX / 'ift_small.jsonl'}",
        f"data.eft={FIX / 'eft_small.jsonl'}",
        f"data.heldout={FIX / 'heldout_small.jsonl'}",
        "verifiable.num_prompts=120",
        "sample.n=4",
        "w2s.weak=reward_model",
        f"w2s.weak_model={tiny_model_dir}",
        f"w2s.strong_model={tiny_model_dir}",
        "w2s.test_pairs=8",
        "w2s.train_pairs=8",
        "w2s.weak_train_pairs=8",
        "w2s.train.learning_rate=0.001",
        "w2s.train.max_length=128",
        "w2s.bootstrap=200",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "w2s_tiny" / "iter_1"
    rows = read_jsonl(run / "w2s_comparisons/data.jsonl")
    splits = {s: [r for r in rows if r["split"] == s] for s in ("test", "strong_train", "weak_train")}
    assert [len(v) for v in splits.values()] == [8, 8, 8]
    prompts = [{r["prompt"][-1]["content"] for r in v} for v in splits.values()]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])  # no prompt shared
    assert {r["truth"] for r in rows} == {"first", "second"}
    metrics = read_json(run / "w2s_result/metrics.json")
    for variant in ("plain", "confidence"):
        r = metrics["results"][variant]
        assert r["n"] == 8
        expected = pgr(r["weak"], r["strong_on_weak"], r["ceiling"])
        assert r["pgr"] == (pytest.approx(expected) if expected is not None else None)
    for name in ("w2s_weak_rm", "w2s_strong_on_weak", "w2s_ceiling", "w2s_strong_on_weak_confidence"):
        assert read_json(run / f"{name}/metrics.json")["steps"] >= 1
    assert "weak-to-strong, plain" in result.output and "PGR" in result.output
    assert (tmp_path / "w2s_tiny" / "report.html").exists()

    # Run again: everything is read back, nothing is trained.
    def no_training(*a, **k):
        raise AssertionError("a finished stage trained again")

    monkeypatch.setattr("autoalign.stages.reward_model.train_reward_model", no_training)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
