"""A non-finite loss or gradient never reaches the weights: training stops naming the step and its
examples (keeping the state from before it), or with nonfinite=skip drops the batch and counts it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoalign.config import DPOConfig, TrainConfig
from autoalign.data import load_ift
from autoalign.models.loading import load_model
from autoalign.train import NonFiniteLossError
from autoalign.train.dpo import train_dpo
from autoalign.train.loop import micro_batches, optimise
from autoalign.train.resume import TrainCheckpointer
from autoalign.types import Pair

FIX = Path(__file__).parent / "fixtures"
POISON = 3  # the example whose loss is NaN


class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0]))


def quadratic_step(forward, rows, batch):
    """loss = (w - 2)^2, NaN for a batch holding the poisoned example."""
    loss = (forward.w - 2.0).pow(2).sum()
    if POISON in batch:
        loss = loss * float("nan")
    return loss, {"loss": loss.item()}


def settings(nonfinite: str) -> TrainConfig:
    return TrainConfig(
        learning_rate=0.1,
        epochs=1,
        batch_size=1,
        grad_accum=1,
        warmup_ratio=0,
        scheduler="constant",
        nonfinite=nonfinite,
    )


def run(nonfinite: str, checkpointer=None):
    model = Scalar()
    ids = [f"ex{i}" for i in range(6)]
    history = optimise(
        model, 6, quadratic_step, settings(nonfinite), 0, "T", checkpointer, forward_module=lambda m: m, example_ids=ids
    )
    return model, history


def poisoned_step() -> int:
    """1-based optimizer step whose batch holds the poisoned example."""
    return next(i for i, b in enumerate(micro_batches(6, settings("stop"), 0), 1) if POISON in b)


def test_stop_names_the_step_and_example_and_keeps_the_weights_from_before_it(tmp_path):
    step = poisoned_step()
    assert step > 1, "the test needs a good step before the poisoned one"
    checkpointer = TrainCheckpointer(tmp_path / "state", every_minutes=0)
    model = Scalar()
    ids = [f"ex{i}" for i in range(6)]
    with pytest.raises(NonFiniteLossError, match=rf"T step {step} of 6: loss nan.* on examples ex{POISON}\. "):
        optimise(
            model,
            6,
            quadratic_step,
            settings("stop"),
            0,
            "T",
            checkpointer,
            forward_module=lambda m: m,
            example_ids=ids,
        )
    # Adam with a constant rate moves w by ~0.1 per step toward 2 (from 1): step-1 good steps were taken.
    assert model.w.item() == pytest.approx(1.0 + 0.1 * (step - 1), abs=1e-3)
    assert (tmp_path / "state" / "progress.json").exists()

    # Rerun with skip: resumes at the poisoned step, drops that batch, trains the rest.
    resumed = Scalar()
    history = optimise(
        resumed, 6, quadratic_step, settings("skip"), 0, "T", checkpointer, forward_module=lambda m: m, example_ids=ids
    )
    straight, straight_history = run("skip")
    assert resumed.w.item() == pytest.approx(straight.w.item(), abs=1e-6)
    assert [r["step"] for r in history] == [r["step"] for r in straight_history]


def test_skip_drops_the_batch_and_counts_it():
    model, history = run("skip")
    step = poisoned_step()
    assert [r["step"] for r in history] == [s for s in range(1, 7) if s != step]
    assert history[-1]["skipped_batches"] == 1
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in history)
    assert model.w.item() == pytest.approx(1.5, abs=1e-3)  # five good steps of ~0.1


def test_a_diverging_dpo_run_stops_before_saving_broken_weights(tiny_model_dir):
    """A learning rate of 1e30 overflows the weights after one step: the next step's gradient is NaN."""
    conversations = load_ift(str(FIX / "ift_small.jsonl"))
    pairs = [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[(i + 1) % len(conversations)][-1]["content"], source="t")
        for i, c in enumerate(conversations)
    ]
    cfg = {"learning_rate": 1e30, "epochs": 1, "batch_size": 1, "grad_accum": 1, "max_length": 128, "warmup_ratio": 0}
    with pytest.raises(NonFiniteLossError, match=r"DPO step 2 of 6: .*gradient norm nan .*on examples p\d\."):
        train_dpo(load_model(tiny_model_dir), pairs, DPOConfig.model_validate({**cfg, "scheduler": "constant"}), seed=1)
    # skip: every later batch is dropped (the weights are already overflowed), and counted.
    _, history, _ = train_dpo(
        load_model(tiny_model_dir),
        pairs,
        DPOConfig.model_validate({**cfg, "scheduler": "constant", "nonfinite": "skip"}),
        seed=1,
    )
    assert [r["step"] for r in history] == [1] and history[-1]["skipped_batches"] == 5
