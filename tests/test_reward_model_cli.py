"""`autoalign rm train` and judge.reward_model: a Bradley-Terry reward model trained on preference
files or runs, measured on held-out prompts, saved, and judging a loop's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoalign.cli import app
from autoalign.config import ConfigError, TrainConfig, load_config
from autoalign.io import DataError, read_json, read_jsonl
from autoalign.judges.base import JudgeItem
from autoalign.judges.reward_model import RewardModelJudgeFactory
from autoalign.loops import iterate
from autoalign.reward_model import load_preferences, split_by_prompt, train_from_files
from autoalign.types import Pair
from test_loop_tiny import tiny_config

TOPICS = ["the sea", "a cat", "bread", "rain", "trains", "music", "a garden", "the moon", "winter", "coffee"]


def _separable_pairs(path: Path, n: int = 40) -> Path:
    """Chosen answers are long and polite, rejected ones a curt refusal: separable by content."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Tell me something about {topic} (question {i})."
        rows.append({
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": f"Of course! Here is a thought about {topic}: it is lovely."}],
            "rejected": "No.",
        })  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_held_out_split_is_by_prompt_and_seeded():
    prompt = lambda i: [{"role": "user", "content": f"q{i}"}]
    pairs = [Pair(f"p{i}", prompt(i % 10), "a", "b") for i in range(30)]  # 10 prompts, 3 pairs each
    train, held = split_by_prompt(pairs, 0.2, seed=0)
    assert len(held) == 6 and len(train) == 24
    assert not {str(p.prompt) for p in train} & {str(p.prompt) for p in held}
    assert split_by_prompt(pairs, 0.2, seed=0) == (train, held)
    assert split_by_prompt(pairs, 0.2, seed=1)[1] != held


def test_preference_files_and_runs_are_read_with_clear_errors(tmp_path):
    good = _separable_pairs(tmp_path / "pairs.jsonl", n=4)
    run = tmp_path / "run"
    for t in (1, 2):
        (run / f"iter_{t}/pairs").mkdir(parents=True)
        (run / f"iter_{t}/pairs/data.jsonl").write_text(good.read_text())
    assert len(load_preferences([good])) == 4 and len(load_preferences([run])) == 8
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'rejected'"):
        load_preferences([bad])
    with pytest.raises(DataError, match="not a run directory"):
        load_preferences([tmp_path])


def test_reward_model_training_learns_a_separable_set(tiny_model_dir, tmp_path):
    """Pairwise accuracy on held-out prompts rises to (nearly) all after training; the saved model
    loads as the judge and scores a held-out chosen answer above its rejected one."""
    pairs = _separable_pairs(tmp_path / "pairs.jsonl")
    cfg = TrainConfig(learning_rate=1e-3, epochs=3, batch_size=4, grad_accum=1, max_length=64, warmup_ratio=0)
    out = tmp_path / "rm"
    record = train_from_files([pairs], str(tiny_model_dir), out, cfg, heldout_fraction=0.2, seed=0, log=lambda m: None)
    assert record["train_pairs"] == 32 and record["heldout_pairs"] == 8
    assert record["heldout"]["pairwise_accuracy"] >= 7 / 8 > record["heldout_before"]["pairwise_accuracy"] - 0.5
    assert record["heldout"]["pairwise_accuracy"] > record["heldout_before"]["pairwise_accuracy"]
    assert read_json(out / "rm.json") == record and not [p for p in tmp_path.iterdir() if p.name.startswith(".rm.")]
    factory = RewardModelJudgeFactory(out)
    judge = factory(None, None, 0)
    prompt = [{"role": "user", "content": "Tell me something about tea (question 99)."}]
    good, bad = judge.judge(
        [JudgeItem(prompt, "Of course! Here is a thought about tea: it is lovely."), JudgeItem(prompt, "No.")]
    )
    assert good.parsed and good.score > bad.score
    assert factory.key == RewardModelJudgeFactory(out).key  # the weights' content, not the run


def test_judge_reward_model_is_checked_when_the_recipe_is_read(tmp_path):
    with pytest.raises(ConfigError, match="set one"):
        load_config(None, ["judge.verifier=ifeval", f"judge.reward_model={tmp_path}"])
    with pytest.raises(ConfigError, match="is not a directory"):
        RewardModelJudgeFactory(tmp_path / "missing")
    with pytest.raises(ConfigError, match="has no weights"):
        RewardModelJudgeFactory(tmp_path)


def test_rm_train_command(tiny_model_dir, tmp_path):
    pairs = _separable_pairs(tmp_path / "pairs.jsonl", n=10)
    result = CliRunner().invoke(
        app, ["rm", "train", str(pairs), "--out", str(tmp_path / "rm"), "--model", str(tiny_model_dir),
              "--epochs", "1", "--max-length", "64", "--batch-size", "4", "--grad-accum", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "judge.reward_model=" in result.output and (tmp_path / "rm/rm.json").exists()
    missing = CliRunner().invoke(app, ["rm", "train", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "nope.jsonl: file not found" in missing.output


def test_a_loop_judged_by_the_reward_model_trains_a_ranking_loss_on_every_answer(tiny_model_dir, tmp_path):
    """judge.reward_model scores the samples; each pair carries all 4 ranked answers, and RRHF
    trains on all of them."""
    pairs = _separable_pairs(tmp_path / "pairs.jsonl", n=10)
    cfg = TrainConfig(learning_rate=1e-3, epochs=1, batch_size=4, grad_accum=1, max_length=64)
    rm = tmp_path / "rm"
    train_from_files([pairs], str(tiny_model_dir), rm, cfg, 0.0, 0, log=lambda m: None)
    cfg = tiny_config(tiny_model_dir, tmp_path / "runs", "iterations=1", f"judge.reward_model={rm}", "dpo.loss=rrhf")
    iterate.run(cfg, log=lambda m: None)
    it = tmp_path / "runs/tiny/iter_1"
    judged = read_json(it / "judgments/metrics.json")
    assert judged["judge_kind"] == "reward_model" and judged["parse_rate"] == 1.0
    rows = read_jsonl(it / "pairs/data.jsonl")
    assert rows and all(
        len(r["ranked"]) == 4 and r["ranked_scores"] == sorted(r["ranked_scores"], reverse=True) for r in rows
    )
    dpo = read_json(it / "dpo/metrics.json")
    assert dpo["loss_name"] == "rrhf" and dpo["examples"] == len(rows)
    assert not list((it / "dpo").glob("reference_logps-*.json"))  # reference-free: no reference pass
