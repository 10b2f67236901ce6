"""Data-parallel training under `accelerate launch`: two CPU processes (gloo) train SFT and DPO
with the loss curve of one process, and write the same checkpoints; only `run` is launchable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from autoalign.engines.server import free_port
from autoalign.io import read_jsonl
from autoalign.train.distributed import World, shard

FIX = Path(__file__).parent / "fixtures"


def test_a_micro_batch_is_shared_round_robin():
    batch = [7, 3, 9, 1, 4]
    assert shard(batch, World(0, 2)) == [7, 9, 4]
    assert shard(batch, World(1, 2)) == [3, 1]
    assert shard([5], World(1, 2)) == []  # this process joins with a stand-in row counted zero times
    assert shard(batch, World()) == batch


def test_only_run_may_be_launched_with_other_processes(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "autoalign", "report", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "only `autoalign run`" in done.stderr + done.stdout


def write_recipe(path: Path, model_dir: Path, runs: Path) -> Path:
    train = dict(epochs=2, grad_accum=2, learning_rate=1e-3, max_length=128, warmup_ratio=0, checkpoint_minutes=0)
    recipe = {
        "name": "tiny",
        "loop": "gold_vs_sample",
        "iterations": 1,
        "model": {"name": str(model_dir)},
        "runs_dir": str(runs),
        "data": {f: str(FIX / f"{f}_small.jsonl") for f in ("ift", "eft", "heldout")},
        "gold": {"file": str(FIX / "ift_small.jsonl"), "num_prompts": 6},
        "sample": {"sampling": {"max_new_tokens": 16, "temperature": 1.0, "batch_size": 4}},
        # SFT: 8 examples in micro-batches of 3 (2 + 1 rows per process). DPO: 6 pairs in batches
        # of 5 and 1, so one process holds no row of the second.
        "sft": {**train, "enabled": True, "batch_size": 3},
        "dpo": {**train, "batch_size": 5},
        "eval": {"num_prompts": 2, "sampling": {"max_new_tokens": 8}},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_recipe(recipe: Path, processes: int) -> None:
    command = [sys.executable, "-m", "autoalign", "run", str(recipe)]
    if processes > 1:
        launch = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu"]
        launch += ["--num_processes", str(processes), "--main_process_port", str(free_port())]
        command = [*launch, *command[1:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_train_as_one(tiny_model_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run_recipe(write_recipe(tmp_path / "one.yaml", tiny_model_dir, one), processes=1)
    run_recipe(write_recipe(tmp_path / "two.yaml", tiny_model_dir, two), processes=2)

    for stage, keys in [("iter_0/sft", ["loss", "tokens", "grad_norm", "lr"]), ("iter_1/dpo", ["loss", "grad_norm"])]:
        single, parallel = (
            read_jsonl(one / "tiny" / stage / "data.jsonl"),
            read_jsonl(two / "tiny" / stage / "data.jsonl"),
        )
        assert len(single) == len(parallel) >= 2
        for a, b in zip(single, parallel):
            for key in keys:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (stage, a["step"], key)
        assert json.loads((two / "tiny" / stage / "metrics.json").read_text())["processes"] == 2
        assert json.loads((one / "tiny" / stage / "metrics.json").read_text())["processes"] == 1

        # The same checkpoint: files, tensors (names, shapes, dtypes) and, within float noise, values.
        model_one, model_two = one / "tiny" / stage / "model", two / "tiny" / stage / "model"
        assert sorted(p.name for p in model_one.iterdir()) == sorted(p.name for p in model_two.iterdir())
        assert (model_one / "config.json").read_text() == (model_two / "config.json").read_text()
        a, b = load_file(model_one / "model.safetensors"), load_file(model_two / "model.safetensors")
        assert {k: (v.shape, v.dtype) for k, v in a.items()} == {k: (v.shape, v.dtype) for k, v in b.items()}
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3
    dpo = read_jsonl(two / "tiny" / "iter_1" / "dpo" / "data.jsonl")
    assert dpo[-1]["rewards/margins"] > dpo[0]["rewards/margins"]  # it trained
