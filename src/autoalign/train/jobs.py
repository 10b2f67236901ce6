"""A training stage as a job every process can run: the main process leads (sends the job, then
runs it), the others follow (receive jobs until told to stop). In a world of one, lead() sends
nothing and run() is the plain single-process training. See train/distributed.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist

from autoalign.config import DPOConfig, ModelConfig, SFTConfig
from autoalign.models.loading import LoadedModel, load_model
from autoalign.train import distributed
from autoalign.train.dpo import train_dpo
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Message, Pair


@dataclass(frozen=True)
class TrainingJob:
    """One SFT or DPO stage: the starting checkpoint, the data, the settings, and the stage's
    resumable files (mid-training checkpoint; DPO's cached reference log-probs)."""

    method: Literal["sft", "dpo"]
    model_path: Path
    model_cfg: ModelConfig
    data: list[Pair] | list[list[Message]]
    cfg: SFTConfig | DPOConfig
    seed: int
    train_state: Path
    reference_cache: Path | None = None

    def load(self) -> LoadedModel:
        """A private copy of the starting checkpoint (training changes weights in place)."""
        cfg = self.model_cfg
        return load_model(self.model_path, cfg.dtype, cfg.chat_template, cfg.device)


def run(job: TrainingJob, loaded: LoadedModel) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    """Train `loaded` (job.load()) as the job says; every process of the world calls this with
    the same job. Returns (trained model, per-step history, data stats)."""
    world = distributed.current()
    checkpointer = TrainCheckpointer(job.train_state, job.cfg.checkpoint_minutes)
    with distributed.training_cores(world):
        if job.method == "dpo":
            trained, history, stats = train_dpo(loaded, job.data, job.cfg, job.seed, job.reference_cache, checkpointer)
        else:
            trained, history, stats = train_sft(loaded, job.data, job.cfg, job.seed, checkpointer)
    return trained, history, {**stats, "processes": world.size}


def lead(job: TrainingJob) -> None:
    """Send the job to the other processes (nothing to do in a world of one)."""
    _send(job)


def release_followers() -> None:
    """Tell the other processes the run is over (after its last stage)."""
    _send(None)


def _send(job: TrainingJob | None) -> None:
    world = distributed.current()
    if world.parallel and world.is_main:
        dist.broadcast_object_list([job], src=0)


def follow() -> int:
    """A non-main process's whole run: receive jobs and train until released. Returns how many
    jobs it ran."""
    done = 0
    while True:
        box: list[TrainingJob | None] = [None]
        dist.broadcast_object_list(box, src=0)
        job = box[0]
        if job is None:
            return done
        run(job, job.load())
        done += 1
