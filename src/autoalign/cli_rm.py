"""`autoalign rm ...`: train a Bradley-Terry reward model on preference pairs (reward_model.py)
and score answers with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autoalign.cli_common import USER_ERRORS, console, fail, stdout_console

rm_app = typer.Typer(help="Reward models: train on preference pairs, use as judge.reward_model.", no_args_is_help=True)


@rm_app.command("train")
def train(
    pairs: Annotated[
        list[Path], typer.Argument(help="{prompt, chosen, rejected} files (JSONL/Parquet) or run directories")
    ],
    out: Annotated[Path, typer.Option(help="Where the reward model is saved (save_pretrained)")],
    model: Annotated[str, typer.Option(help="Base model: bundled name, local HF directory, or hub id")] = "smollm2",
    heldout: Annotated[float, typer.Option(help="Share of the prompts held out for measuring", min=0, max=0.9)] = 0.2,
    epochs: Annotated[float, typer.Option(min=0.01)] = 1.0,
    learning_rate: Annotated[float, typer.Option(min=0)] = 1e-5,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    grad_accum: Annotated[int, typer.Option(min=1)] = 2,
    max_length: Annotated[int, typer.Option(min=16)] = 512,
    lora: Annotated[bool, typer.Option(help="Train LoRA adapters (and the head) instead of all weights")] = False,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train on the pairs, measure pairwise accuracy on held-out prompts before and after, save."""
    from autoalign.config import TrainConfig
    from autoalign.config.models import LoraConfig
    from autoalign.reward_model import train_from_files

    try:
        cfg = TrainConfig(
            learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum,
            max_length=max_length, lora=LoraConfig(enabled=lora),
        )  # fmt: skip
        record = train_from_files(pairs, model, out, cfg, heldout, seed, log=lambda m: console.print(m))
    except USER_ERRORS as e:
        fail(e)
    table = Table(title=f"reward model {out}")
    for column in ("held-out pairs", "accuracy before", "accuracy after", "kendall tau-b after", "train s"):
        table.add_column(column)
    before, after = record["heldout_before"] or {}, record["heldout"] or {}
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    table.add_row(
        str(record["heldout_pairs"]), fmt(before.get("pairwise_accuracy")), fmt(after.get("pairwise_accuracy")),
        fmt(after.get("kendall_tau_b")), f"{record['train_seconds']:.0f}",
    )  # fmt: skip
    stdout_console().print(table)
    console.print(f"use it: judge.reward_model={out}")
