"""Preference training of M_{t+1} from M_t on pairs, with the loss the recipe names (dpo.loss,
DPO by default) and reference = M_t.

The reference model is the starting policy, so its log-probabilities are computed once, with
the untouched weights, before the first update, and cached (in memory and, given a path, on
disk so a restarted stage does not recompute them); a reference-free loss skips them. No second
copy of the model is kept.

The loss's kind decides what one training example is (train/preference_data.py): a pair, every
judged answer of a prompt (ranking losses), or one labelled answer with another prompt's answer
for KTO's KL estimate. Chain of Hindsight is SFT on relabelled conversations (train/hindsight.py).
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
from autoalign.train.data import Encoded, answer_logprobs
from autoalign.train.hindsight import hindsight_conversations
from autoalign.train.loop import activation_checkpointing, autocast_mode, freeze_embeddings, optimise, precision
from autoalign.train.losses import SequenceScores, chosen_nll_weight, loss_kind, preference_loss, with_chosen_nll
from autoalign.train.losses.kto import kto_reference_point
from autoalign.train.preference_data import (
    Group,
    Labelled,
    pair_groups,
    ranking_groups,
    unpaired_from_pairs,
    unpaired_groups,
)
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Pair


def pair_width(pair: tuple[Encoded, ...]) -> int:
    """A pair's chosen and rejected sequences share a batch: its padded width is the longer's."""
    return max(len(e.input_ids) for e in pair)


def forward_logprobs(model: torch.nn.Module, examples: list[Encoded], pad_token_id: int) -> torch.Tensor:
    """log pi(answer | prompt) per example: the sum of its answer tokens' log-probabilities."""
    logps, _ = answer_logprobs(model, examples, pad_token_id)
    return logps.sum(-1)


@torch.no_grad()
def reference_logprobs(
    model: torch.nn.Module, encoded: list[tuple[Encoded, ...]], pad_token_id: int, batch_size: int
) -> torch.Tensor:
    """(num_examples, n) tensor of log pi_ref(sequence) for each example's n sequences
    ([chosen, rejected] for pairs; zero where an example has fewer than n). Examples run in order
    of length (one pass, so nothing to shuffle), so a batch pads little. Processes training
    together take every size-th batch each and sum their shares."""
    model.eval()
    world = distributed.current()
    order = sorted(range(len(encoded)), key=lambda i: pair_width(encoded[i]))
    width = max(len(group) for group in encoded)
    values = torch.zeros(len(encoded), width, device=next(model.parameters()).device)
    starts = range(world.rank * batch_size, len(order), world.size * batch_size)
    for start in tqdm(starts, desc="reference log-probs", unit="batch", disable=not world.is_main):
        chunk = order[start : start + batch_size]
        flat = forward_logprobs(model, [e for i in chunk for e in encoded[i]], pad_token_id).float()
        offset = 0
        for i in chunk:
            values[i, : len(encoded[i])] = flat[offset : offset + len(encoded[i])]
            offset += len(encoded[i])
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
    pairs: list[Pair] | list[Labelled],
    cfg: DPOConfig,
    seed: int,
    reference_cache: Path | None = None,
    checkpointer: TrainCheckpointer | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    """Returns (trained model with adapters merged, per-step history, data stats). pairs: the
    loops' pairs, or for KTO labelled single answers too (train.preference_data.Labelled)."""
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    loss_fn = preference_loss(cfg.loss, **cfg.model_dump())
    kind = loss_kind(loss_fn)
    if kind == "hindsight":
        model, history, stats = train_sft(loaded, hindsight_conversations(pairs, seed), cfg, seed, checkpointer)
        return model, history, {"pairs": len(pairs), **stats}
    tokenizer = loaded.tokenizer
    if kind == "unpaired":
        labelled = [p for p in pairs if isinstance(p, Labelled)] + unpaired_from_pairs(
            [p for p in pairs if isinstance(p, Pair)]
        )
        groups = unpaired_groups(tokenizer, labelled, cfg.max_length, seed)
    elif isinstance(pairs[0], Labelled):
        raise ValueError(f"dpo.loss={cfg.loss} trains on pairs; labelled single answers need dpo.loss=kto")
    else:
        groups = (ranking_groups if kind == "ranking" else pair_groups)(tokenizer, pairs, cfg.max_length)
    model, history, stats = train_groups(loaded, groups, loss_fn, cfg, seed, reference_cache, checkpointer)
    return model, history, {"pairs": len(pairs), **stats}


def train_groups(
    loaded: LoadedModel,
    groups: list[Group],
    loss_fn,
    cfg: DPOConfig,
    seed: int,
    reference_cache: Path | None = None,
    checkpointer: TrainCheckpointer | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    pad = loaded.tokenizer.pad_token_id
    torch.manual_seed(seed)
    model = lora.wrap(loaded.model, cfg.lora)
    if cfg.freeze_embeddings:
        freeze_embeddings(model)
    device = next(model.parameters()).device
    reference = None
    started = time.perf_counter()
    if not loss_fn.reference_free:

        def compute() -> torch.Tensor:
            with precision(cfg, model):
                return reference_logprobs(model, [g.sequences for g in groups], pad, cfg.batch_size)

        reference = _cached_reference(reference_cache, compute, device)
    weights = torch.tensor([g.weight for g in groups], device=device)
    weights = weights / weights.mean()  # mean 1: uniform weights leave the loss unchanged
    losses = {"pairs": _pair_loss, "ranking": _ranking_loss, "unpaired": _unpaired_loss}[loss_kind(loss_fn)]
    sft_weight = chosen_nll_weight(cfg.loss, cfg.sft_weight)

    def step(forward: torch.nn.Module, rows: list[int], batch: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        context = StepInputs(groups, rows, batch, reference, weights[rows], model, pad)
        loss, metrics, best, best_weights = losses(loss_fn, forward, context)
        loss, metrics = with_chosen_nll(loss, metrics, best, best_weights, sft_weight)
        share = len(rows) / len(batch)  # these rows' part of the batch's mean
        return loss * share, {k: v * share for k, v in metrics.items()}

    reference_seconds = time.perf_counter() - started
    with activation_checkpointing(model, cfg.activation_checkpointing):
        widths = [g.width for g in groups]
        ids = [g.example_id for g in groups]
        history = optimise(model, len(groups), step, cfg, seed, "DPO", checkpointer, widths, example_ids=ids)
    sequences = [e for g in groups for e in g.sequences]
    stats = {
        "examples": len(groups),
        "truncated": sum(g.truncated for g in groups),
        "mean_tokens": sum(len(e.input_ids) for e in sequences) / len(sequences),
        "autocast": autocast_mode(cfg, model),
        "reference_seconds": round(reference_seconds, 2),
        "train_seconds": round(time.perf_counter() - started - reference_seconds, 2),
    }
    return lora.unwrap(model), history, stats


class StepInputs:
    """One micro-batch as a loss adapter sees it: this process's rows of the batch."""

    def __init__(self, groups, rows, batch, reference, weights, model, pad):
        self.groups, self.rows, self.batch, self.reference = groups, rows, batch, reference
        self.weights, self.model, self.pad = weights, model, pad

    def scores(self, forward: torch.nn.Module, sequences: list[Encoded]) -> SequenceScores:
        return SequenceScores.from_tokens(*forward(sequences, self.pad))


def _pair_loss(loss_fn, forward, inputs: StepInputs):
    rows, groups, reference = inputs.rows, inputs.groups, inputs.reference
    scores = inputs.scores(forward, [e for i in rows for e in groups[i].sequences])
    chosen = SequenceScores(scores.logps[0::2], scores.tokens[0::2])
    rejected = SequenceScores(scores.logps[1::2], scores.tokens[1::2])
    ref = None if reference is None else (reference[rows, 0], reference[rows, 1])
    return (*loss_fn(chosen, rejected, ref, inputs.weights), chosen, inputs.weights)


def _ranking_loss(loss_fn, forward, inputs: StepInputs):
    """Every group's answers in one forward pass, laid out (groups, n) with a mask."""
    members = [inputs.groups[i] for i in inputs.rows]
    scores = inputs.scores(forward, [e for g in members for e in g.sequences])
    n = max(len(g.sequences) for g in members)
    device = scores.logps.device
    mask = torch.tensor([[k < len(g.sequences) for k in range(n)] for g in members], device=device)
    rewards = [[float(r) for r in g.rewards] + [0.0] * (n - len(g.rewards)) for g in members]
    rewards = torch.tensor(rewards, device=device)
    mean_logps = torch.zeros(len(members), n, device=device, dtype=scores.logps.dtype)
    mean_logps = mean_logps.masked_scatter(mask, -scores.nll)
    loss, metrics = loss_fn(mean_logps, rewards, mask, inputs.weights)
    starts = torch.tensor([0] + [len(g.sequences) for g in members[:-1]], device=device).cumsum(0)
    best = SequenceScores(scores.logps[starts], scores.tokens[starts])  # groups are ordered best first
    return loss, metrics, best, inputs.weights


def _unpaired_loss(loss_fn, forward, inputs: StepInputs):
    """KTO: the answers of this process's rows with gradients; the KL estimate z0 from the whole
    micro-batch's mismatched answers without, so every process uses the same z0."""
    groups, reference = inputs.groups, inputs.reference
    scores = inputs.scores(forward, [groups[i].sequences[0] for i in inputs.rows])
    with torch.no_grad():
        kl_policy = forward_logprobs(inputs.model, [groups[i].sequences[1] for i in inputs.batch], inputs.pad)
    z0 = kto_reference_point(kl_policy.float(), reference[inputs.batch, 1])
    desirable = torch.tensor([groups[i].desirable for i in inputs.rows], device=scores.logps.device)
    loss, metrics = loss_fn(scores.logps, reference[inputs.rows, 0], desirable, z0, inputs.weights)
    return loss, metrics, scores, inputs.weights * desirable  # the SFT term imitates desirable answers only
