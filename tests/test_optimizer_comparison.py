"""`optimizers:` a comparison of optimisers as override sets of one recipe: one M1, the same
prompts and samples, one M2 per optimiser, and a table comparing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoalign.config import ConfigError, load_config
from autoalign.io import read_json
from autoalign.loops import iterate
from autoalign.report import write_report
from autoalign.summary import comparison_rows
from test_loop_tiny import make_verifier, tiny_config

RECIPES = Path(__file__).parents[1] / "recipes"


def test_the_optimizers_recipe_names_every_loss_and_both_rl_algorithms():
    cfg = load_config(RECIPES / "optimizers.yaml", [])
    branches = {name: cfg.optimizer_config(name) for name in cfg.optimizers}
    losses = {b.dpo.loss for b in branches.values() if b.loop != "rl"}
    assert losses == {"dpo", "cdpo", "robust", "ipo", "slic", "simpo", "orpo", "kto", "rrhf", "pro", "coh"}
    assert {b.rl.algorithm for b in branches.values() if b.loop == "rl"} == {"grpo", "rloo"}
    assert branches["ipo"].dpo.beta == 0.5 and branches["dpo"].dpo.beta == 0.1
    assert all(b.optimizers == {} and b.verifiable == cfg.verifiable for b in branches.values())


def test_bad_optimizer_overrides_fail_when_the_recipe_is_read():
    with pytest.raises(ConfigError, match="optimizers.x"):
        load_config(None, ["optimizers={x: [dpo.loss=nope]}"])
    with pytest.raises(ConfigError, match="set one"):
        load_config(None, ["optimizers={a: [dpo.loss=ipo]}", "branches=[self_reward]"])


def test_a_tiny_optimizer_comparison_runs_end_to_end(tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir, tmp_path, "iterations=1",
        "optimizers={dpo: [dpo.loss=dpo], kto: [dpo.loss=kto], rrhf: [dpo.loss=rrhf],"
        " grpo: [loop=rl, rl.reward=judge, rl.batch_size=4, rl.grad_accum=1, rl.max_length=128]}",
    )  # fmt: skip
    result = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny"
    assert set(result["branches"]) == {"dpo", "kto", "rrhf", "grpo"}
    assert read_json(run / "branches.json")["branches"] == ["dpo", "kto", "rrhf", "grpo"]
    # The samples are made once, in the shared store, and every branch learns from them.
    assert (run / "iter_1/candidates/data.jsonl").exists()
    assert not any((run / b / "iter_1/candidates").exists() for b in result["branches"])
    assert read_json(run / "grpo/iter_1/rl/metrics.json")["answers"] == 24
    assert read_json(run / "kto/iter_1/dpo/metrics.json")["loss_name"] == "kto"
    rows = {r["source"]: r for r in comparison_rows(run, list(result["branches"]))}
    assert {rows[b]["optimizer"] for b in result["branches"]} == {"dpo", "kto", "rrhf", "grpo"}
    assert all(rows[b]["train_seconds"] > 0 and rows[b]["model"] == "M2" for b in result["branches"])
    assert "grpo" in write_report(run).read_text()
