"""Data-parallel training across processes started by `accelerate launch` (or torchrun).

Only training is data-parallel. The main process (rank 0) runs the recipe as a single process
would: generation, judging, pairs, the store, the report. Every other process waits for training
jobs: when the main process reaches an SFT or DPO stage it sends the job (train/jobs.py), all
processes load the same checkpoint and train together, each on its share of every micro-batch,
with gradients averaged by torch's DistributedDataParallel; only the main process writes. So the
loss curve is the single-process one (the recipe's batch_size is the global batch), in less time.

accelerate's PartialState sets up the process group from the launcher's environment (gloo on
CPUs, NCCL on GPUs). All processes must see the run directory at the same path (one machine, or
a shared filesystem): the others read checkpoints and cached reference log-probs from it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

WAIT_FOR_JOB = timedelta(days=7)
"""How long a process may wait in one collective call: the other processes wait through
generation and judging stages, which take hours; the launcher stops them if the main one dies."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def launched_size() -> int:
    """How many processes the launcher started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start() -> World:
    """Join the launcher's process group (once); a plain run is a world of one. The launcher
    gives each process one CPU thread; the main process takes all cores back for the stages it
    runs alone (training shares them: jobs.run)."""
    if launched_size() <= 1:
        return World()
    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT_FOR_JOB)
    world = current()
    if world.is_main:
        torch.set_num_threads(os.cpu_count() or 1)
    return world


def current() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size())))


@contextlib.contextmanager
def training_cores(world: World):
    """Within the block, torch's intra-op threads are the machine's cores shared by the processes
    training together (the launcher sets 1 per process; the main process's generation takes them
    all: start()). Nothing changes in a world of one."""
    if not world.parallel:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.local_size))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def shard(indices: list[int], world: World) -> list[int]:
    """This process's share of a micro-batch: every size-th example from its rank."""
    return indices[world.rank :: world.size]


def data_parallel(module: torch.nn.Module, world: World) -> torch.nn.Module:
    """DDP over the module (parameters broadcast from rank 0, gradients averaged in backward);
    the module itself in a world of one. Gradients live in DDP's buckets (no second copy)."""
    if not world.parallel:
        return module
    device = next(module.parameters()).device
    device_ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, gradient_as_bucket_view=True)


def no_sync(module: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient averaging in this backward (gradient accumulation averages once, at
    the optimizer step's last micro-batch)."""
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return module.no_sync()


def sum_across(values: torch.Tensor, world: World) -> torch.Tensor:
    """Element-wise sum over processes (in place; returned for convenience)."""
    if world.parallel:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def from_main(value, world: World):
    """The main process's value of a small picklable object, on every process."""
    if not world.parallel:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
