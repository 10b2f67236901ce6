"""Mid-training checkpoints, so a crash during a long SFT or DPO stage loses minutes, not hours.

A checkpoint holds what an exact continuation needs: the trainable weights (all of them for full
fine-tuning, only the adapters for LoRA), the optimizer and scheduler state, the RNG state, the
number of optimizer steps done and the metrics history so far. The batch order is a pure function
of the seed, so resuming at step k replays exactly the batches an uninterrupted run would have.

It is written to a temporary sibling directory and renamed into place, so the directory on disk
is always either the previous complete checkpoint or the new complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from autoalign.io import private_sibling_dir, remove_tree, storage_errors

STATE_FILE = "train_state.pt"
PROGRESS_FILE = "progress.json"


@dataclass
class TrainCheckpointer:
    """Saves every `every_minutes` of wall time (never when <= 0) into `dir`."""

    dir: Path
    every_minutes: float
    _last_save: float = field(default_factory=time.monotonic)

    @property
    def old_dir(self) -> Path:
        return self.dir.with_name(self.dir.name + ".old")

    def due(self) -> bool:
        return self.every_minutes > 0 and time.monotonic() - self._last_save >= self.every_minutes * 60

    def save(self, model: torch.nn.Module, optimizer, scheduler, step: int, history: list[dict[str, float]]) -> None:
        tmp = private_sibling_dir(self.dir)
        try:
            trainable = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
            state = {
                "trainable": trainable,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            }
            with storage_errors(self.dir):
                with open(tmp / STATE_FILE, "wb") as f:  # a Python file: a full disk raises OSError
                    torch.save(state, f)
                # progress.json is written last: its presence marks the checkpoint complete.
                (tmp / PROGRESS_FILE).write_text(json.dumps({"step": step, "history": history}))
            old = self.old_dir
            remove_tree(old)  # what a crash in an earlier swap left
            if self.dir.exists():
                os.replace(self.dir, old)
            os.replace(tmp, self.dir)  # a crash between the two renames leaves the checkpoint in old
            remove_tree(old)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._last_save = time.monotonic()

    def load(self, model: torch.nn.Module, optimizer, scheduler) -> tuple[int, list[dict[str, float]]]:
        """Restores the saved state into model/optimizer/scheduler; (0, []) when there is none."""
        if not (self.dir / PROGRESS_FILE).exists() and (self.old_dir / PROGRESS_FILE).exists():
            os.replace(self.old_dir, self.dir)  # the run died between save's two renames
        if not (self.dir / PROGRESS_FILE).exists():
            return 0, []
        progress = json.loads((self.dir / PROGRESS_FILE).read_text())
        state: dict[str, Any] = torch.load(self.dir / STATE_FILE, weights_only=True)
        params = dict(model.named_parameters())
        missing = [name for name in state["trainable"] if name not in params]
        if missing:
            raise RuntimeError(
                f"{self.dir}: checkpoint does not match the model (unknown parameters {missing[:3]}); delete it to start over"
            )
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return progress["step"], progress["history"]
