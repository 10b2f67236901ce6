"""Preference training of M_{t+1} from M_t on pairs, with the loss the recipe names (dpo.loss,
DPO by default) and reference = M_t.

The reference model is the starting policy, so its log-probabilities are computed once, with
the untouched weights, before the first update, and cached (in memory and, given a path, on
disk so a restarted stage does not recompute them); a reference-free loss skips them. No second
copy of the model is kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from autoalign.config import DPOConfig
from autoalign.io import atomic_write_text
from autoalign.models.loading import LoadedModel
from autoalign.train import distributed, lora
from autoalign.train.data import Encoded, answer_logprobs, encode_pair
from autoalign.train.loop import activation_checkpointing, autocast_mode, freeze_embeddings, optimise, precision
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.losses import (
    SequenceScores,
    preference_loss,
    with_chosen_nll,
)
from autoalign.types import Pair


def pair_width(pair: tuple[Encoded, Encoded]) -> int:
    """A pair's chosen and rejected sequences share a batch: its padded width is the longer's."""
    return max(len(pair[0].input_ids), len(pair[1].input_ids))


def forward_logprobs(model: torch.nn.Module, examples: list[Encoded], pad_token_id: int) -> torch.Tensor:
    """log pi(answer | prompt) per example: the sum of its answer tokens' log-probabilities."""
    logps, _ = answer_logprobs(model, examples, pad_token_id)
    return logps.sum(-1)


@torch.no_grad()
def reference_logprobs(
    model: torch.nn.Module, encoded: list[tuple[Encoded, Encoded]], pad_token_id: int, batch_size: int
) -> torch.Tensor:
    """(num_pairs, 2) tensor of [log pi_ref(chosen), log pi_ref(rejected)]. Pairs run in order of
    length (one pass, so nothing to shuffle), so a batch pads little. Processes training together
    take every size-th batch each and sum their shares."""
    model.eval()
    world = distributed.current()
    order = sorted(range(len(encoded)), key=lambda i: pair_width(encoded[i]))
    values = torch.zeros(len(encoded), 2, device=next(model.parameters()).device)
    starts = range(world.rank * batch_size, len(order), world.size * batch_size)
    for start in tqdm(starts, desc="reference log-probs", unit="batch", disable=not world.is_main):
        chunk = order[start : start + batch_size]
        flat = [e for i in chunk for e in encoded[i]]
        values[chunk] = forward_logprobs(model, flat, pad_token_id).view(-1, 2).float()
    return distributed.sum_across(values, world)


def _cached_reference(path: Path | None, compute, device: torch.device) -> torch.Tensor:
    """compute() once per stage version: a restarted stage reads the cache the main process
    wrote (its decision counts: the others must not start computing alone)."""
    world = distributed.current()
    if distributed.from_main(path is not None and path.exists(), world):
        return torch.tensor(json.loads(path.read_text()), device=device)
    values = compute()
    if path is not None and world.is_main:
        atomic_write_text(path, json.dumps(values.tolist()))  # a crash never leaves a torn cache
    return values


def train_dpo(
    loaded: LoadedModel,
    pairs: list[Pair],
    cfg: DPOConfig,
    seed: int,
    reference_cache: Path | None = None,
    checkpointer: TrainCheckpointer | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    """Returns (trained model with adapters merged, per-step history, data stats)."""
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id
    encoded = [encode_pair(tokenizer, p, cfg.max_length) for p in pairs]
    torch.manual_seed(seed)
    model = lora.wrap(loaded.model, cfg.lora)
    if cfg.freeze_embeddings:
        freeze_embeddings(model)
    device = next(model.parameters()).device
    loss_fn = preference_loss(cfg.loss, cfg.beta)
    reference = None
    started = time.perf_counter()
    if not loss_fn.reference_free:

        def compute() -> torch.Tensor:
            with precision(cfg, model):
                return reference_logprobs(model, encoded, pad, cfg.batch_size)

        reference = _cached_reference(reference_cache, compute, device)
    weights = torch.tensor([p.weight for p in pairs], device=device)
    weights = weights / weights.mean()  # mean 1: uniform weights leave the loss unchanged

    def step(forward: torch.nn.Module, rows: list[int], batch: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        flat = [e for i in rows for e in encoded[i]]
        scores = SequenceScores.from_tokens(*forward(flat, pad))
        chosen = SequenceScores(scores.logps[0::2], scores.tokens[0::2])
        rejected = SequenceScores(scores.logps[1::2], scores.tokens[1::2])
        ref = None if reference is None else (reference[rows, 0], reference[rows, 1])
        loss, metrics = with_chosen_nll(
            *loss_fn(chosen, rejected, ref, weights[rows]), chosen, weights[rows], cfg.sft_weight
        )
        share = len(rows) / len(batch)  # these rows' part of the batch's mean
        return loss * share, {k: v * share for k, v in metrics.items()}

    reference_seconds = time.perf_counter() - started
    with activation_checkpointing(model, cfg.activation_checkpointing):
        widths = [pair_width(pair) for pair in encoded]
        history = optimise(model, len(encoded), step, cfg, seed, "DPO", checkpointer, widths)
    stats = {
        "pairs": len(pairs),
        "truncated": sum(c.truncated or r.truncated for c, r in encoded),
        "mean_tokens": sum(len(c.input_ids) + len(r.input_ids) for c, r in encoded) / (2 * len(encoded)),
        "autocast": autocast_mode(cfg, model),
        "reference_seconds": round(reference_seconds, 2),
        "train_seconds": round(time.perf_counter() - started - reference_seconds, 2),
    }
    return lora.unwrap(model), history, stats
