"""The optimisation loop shared by SFT and DPO: micro-batches, gradient accumulation, clipping,
warmup + cosine/linear schedule, a progress bar, one metrics row per optimizer step, and
optional mid-training checkpoints to resume from (train/resume.py).

The caller supplies `step_fn(forward, rows, batch) -> (loss, metrics)`: the micro-batch `batch`'s
mean loss and metrics, or, when processes train together (train/distributed.py), the part of them
that this process's `rows` of the batch contribute (the parts sum to the single-process values).
forward is the model's answer log-probabilities (train/data.AnswerLogprobs), wrapped in
DistributedDataParallel then. Everything method-specific (what a batch is, which loss) stays in
sft.py / dpo.py.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from autoalign.config import TrainConfig
from autoalign.models.hardware import fast_bf16
from autoalign.train import NonFiniteLossError, distributed, lora
from autoalign.train.data import AnswerLogprobs
from autoalign.train.memory import release_freed_memory
from autoalign.train.resume import TrainCheckpointer

StepFn = Callable[[torch.nn.Module, list[int], list[int]], tuple[torch.Tensor, dict[str, float]]]


def freeze_embeddings(model: torch.nn.Module) -> None:
    """Fix the input embeddings and the output layer (one matrix when they are tied)."""
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None:
            module.weight.requires_grad_(False)


@contextlib.contextmanager
def activation_checkpointing(model: torch.nn.Module, every_n_layers: int):
    """Within the block, backward recomputes the decoder layers' activations (every n-th layer
    checkpointed; 0: nothing changes). Non-reentrant checkpointing, so LoRA-wrapped models need
    no input gradients. The trained model leaves without it."""
    if not every_n_layers:
        yield
        return
    causal = lora.base_model(model)
    causal.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=every_n_layers)
    try:
        yield
    finally:
        causal.activation_checkpointing_disable()


def autocast_mode(cfg: TrainConfig, model: torch.nn.Module) -> str:
    """cfg.autocast with "auto" settled for the model's device: "bf16" or "off"."""
    if cfg.autocast == "auto":
        return "bf16" if fast_bf16(next(model.parameters()).device) else "off"
    return cfg.autocast


def precision(cfg: TrainConfig, model: torch.nn.Module) -> contextlib.AbstractContextManager:
    """The context forward passes run in: bf16 autocast on the model's device, or nothing. The
    backward pass runs outside it (autocast records the casts; gradients come back in fp32)."""
    if autocast_mode(cfg, model) == "off":
        return contextlib.nullcontext()
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16)


GROUP_WINDOW_BATCHES = 16
"""Length grouping sorts windows of this many batches: wide enough to find similar lengths,
narrow enough that a batch still mixes examples from anywhere in the data."""


def micro_batches(num_examples: int, cfg: TrainConfig, seed: int, lengths: list[int] | None = None) -> list[list[int]]:
    """Shuffled index batches covering cfg.epochs passes (a fractional last pass is allowed).
    Given each example's padded length, and cfg.group_by_length, batches group similar lengths."""
    rng = random.Random(seed)
    total = max(1, round(num_examples * cfg.epochs))
    if lengths is not None and cfg.group_by_length:
        return length_grouped_batches(num_examples, total, cfg.batch_size, lengths, rng)
    order: list[int] = []
    while len(order) < total:
        epoch = list(range(num_examples))
        rng.shuffle(epoch)
        order.extend(epoch)
    order = order[:total]
    return [order[i : i + cfg.batch_size] for i in range(0, total, cfg.batch_size)]


def length_grouped_batches(
    num_examples: int, total: int, batch_size: int, lengths: list[int], rng: random.Random
) -> list[list[int]]:
    """Per epoch: shuffle, sort each window of GROUP_WINDOW_BATCHES batches by length, cut it into
    batches, shuffle the epoch's batches. An epoch's short last batch stays its own (batches never
    straddle epochs); the examples past `total` are dropped from the end."""
    batches: list[list[int]] = []
    taken = 0
    window = batch_size * GROUP_WINDOW_BATCHES
    while taken < total:
        epoch = list(range(num_examples))
        rng.shuffle(epoch)
        epoch = epoch[: total - taken]
        epoch_batches = []
        for start in range(0, len(epoch), window):
            ordered = sorted(epoch[start : start + window], key=lambda i: lengths[i], reverse=True)
            epoch_batches += [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
        rng.shuffle(epoch_batches)
        batches += epoch_batches
        taken += len(epoch)
    return batches


FUSED_ADAMW_DEVICES = ("cpu", "cuda")
"""Where torch's fused AdamW kernel exists: one pass over each tensor, no temporaries (on this CPU
a 135M step takes 0.08 s against the multi-tensor version's 0.35 s)."""


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW as cfg.optimizer names it: fp32 moments, or 8-bit block-wise quantised ones."""
    if cfg.optimizer == "adamw_8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    fused = params[0].device.type in FUSED_ADAMW_DEVICES
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused)


def optimise(
    model: torch.nn.Module,
    num_examples: int,
    step_fn: StepFn,
    cfg: TrainConfig,
    seed: int,
    desc: str,
    checkpointer: TrainCheckpointer | None = None,
    lengths: list[int] | None = None,
    forward_module: Callable[[torch.nn.Module], torch.nn.Module] = AnswerLogprobs,
    example_ids: Sequence[str] | None = None,
) -> list[dict[str, float]]:
    """lengths: each example's padded width in tokens, for length-grouped batches. forward_module:
    the model's forward as step_fn sees it (answer log-probabilities; a reward model's scores).
    example_ids: how an error names each example (an empty id or none: its position).

    A step whose loss, metrics or gradient norm is not finite never reaches the weights: with
    cfg.nonfinite == "stop" training ends with NonFiniteLossError (the state from before the step is
    checkpointed first, so a rerun with nonfinite=skip resumes there); with "skip" the batch is
    dropped and counted in `skipped_batches` (each row: the batches skipped so far; the last: all)."""
    batches = micro_batches(num_examples, cfg, seed, lengths)
    num_steps = math.ceil(len(batches) / cfg.grad_accum)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    scheduler = get_scheduler(
        cfg.scheduler if cfg.scheduler != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=round(cfg.warmup_ratio * num_steps),
        num_training_steps=num_steps,
    )
    world, device = distributed.current(), next(model.parameters()).device
    forward = distributed.data_parallel(forward_module(model), world)
    done, history = checkpointer.load(model, optimizer, scheduler) if checkpointer else (0, [])
    skipped = int(history[-1].get("skipped_batches", 0)) if history else 0
    saved = done
    model.train()
    bar = tqdm(total=num_steps, initial=done, desc=desc, unit="step", disable=not world.is_main)
    for step in range(done, num_steps):
        rng_at_start = torch.get_rng_state()
        group = batches[step * cfg.grad_accum : (step + 1) * cfg.grad_accum]
        count = sum(len(g) for g in group)
        names, sums = [], None
        for position, indices in enumerate(group):
            rows = distributed.shard(indices, world)
            # A process with no row of this micro-batch still joins DDP's backward, with a stand-in
            # row that counts zero times.
            counted = 1.0 if rows else 0.0
            with distributed.no_sync(forward, sync=position == len(group) - 1):
                with precision(cfg, model):
                    loss, metrics = step_fn(forward, rows or indices[:1], indices)
                if cfg.release_freed_memory:  # the forward's freed temporaries, before backward allocates
                    release_freed_memory()
                # Weighted by the examples it holds, so a short last micro-batch does not count as a
                # full one; times the world size, as DDP averages gradients over processes.
                (loss * counted * len(indices) / count * world.size).backward()
            names = list(metrics)
            values = [metrics[k] * counted * len(indices) for k in names]
            sums = values if sums is None else [a + b for a, b in zip(sums, values)]
        if world.parallel:  # on the model's device: NCCL reduces GPU tensors only
            sums = distributed.sum_across(torch.tensor(sums, dtype=torch.float64, device=device), world).tolist()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
        if not all(math.isfinite(v) for v in [grad_norm, *sums]):
            optimizer.zero_grad(set_to_none=True)
            if cfg.nonfinite == "skip":
                skipped += 1
                bar.update()
                continue
            if checkpointer and world.is_main and step > saved:
                torch.set_rng_state(rng_at_start)  # the state an uninterrupted run had at this step
                checkpointer.save(model, optimizer, scheduler, step, history)
            ids = [(example_ids[i] if example_ids else "") or f"#{i}" for indices in group for i in indices]
            loss_now = sums[names.index("loss")] / count if "loss" in names else float("nan")
            raise NonFiniteLossError(
                f"{desc} step {step + 1} of {num_steps}: loss {loss_now:.4g}, gradient norm {grad_norm:.4g} "
                f"(not finite) on examples {', '.join(ids)}. The weights from before this step are kept"
                f"{' (checkpointed: a rerun resumes there)' if checkpointer and step > 0 else ''}; lower the "
                "learning rate, or set nonfinite: skip in this training section (e.g. dpo.nonfinite=skip) "
                "to drop such batches"
            )
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        means = {k: v / count for k, v in zip(names, sums)}
        row = {"step": step + 1, **means, "grad_norm": grad_norm, "lr": lr, "skipped_batches": skipped}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        bar.update()
        if checkpointer and world.is_main and checkpointer.due() and step + 1 < num_steps:
            checkpointer.save(model, optimizer, scheduler, step + 1, history)
    bar.close()
    model.eval()
    if not history:
        raise NonFiniteLossError(
            f"{desc}: the loss or gradient norm of all {num_steps} steps was not finite: nothing trained"
        )
    history[-1]["skipped_batches"] = skipped  # batches skipped after the last step that trained count too
    return history
