"""One round of online RL: M_{t+1} from M_t on M_t's own sampled answers, each with its
advantage (train/losses/policy_gradient.py), under the clipped policy-gradient loss with a KL
penalty to the reference (the model RL started from).

    pi_old     M_t's log-probability of every answer token, computed once before the first
               update (and the entropy of its next-token distribution, logged), cached
    pi_ref     the reference's, computed by the caller (stages/rl.py) and passed in
    optimise   rl.epochs passes over the answers in micro-batches; each step logs loss, reward,
               KL, clip fraction, entropy and answer length

An answer cut off at max tokens is trained without the end-of-turn marker it never produced.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autoalign.config import RLConfig
from autoalign.io import atomic_write_text
from autoalign.models.loading import LoadedModel
from autoalign.train import lora
from autoalign.train.data import Encoded, answer_logprobs, encode_chat
from autoalign.train.loop import activation_checkpointing, freeze_embeddings, optimise, precision
from autoalign.train.losses.policy_gradient import clipped_policy_loss
from autoalign.train.resume import TrainCheckpointer
from autoalign.types import Message


@dataclass(frozen=True)
class Rollout:
    """One sampled answer with its reward and its advantage within its prompt's group."""

    prompt: list[Message]
    answer: str
    finished: bool
    reward: float
    advantage: float


def encode_rollouts(tokenizer, rollouts: list[Rollout], max_length: int) -> list[Encoded]:
    return [encode_chat(tokenizer, r.prompt, r.answer, max_length, r.finished) for r in rollouts]


@torch.no_grad()
def token_logprobs(
    model: torch.nn.Module, encoded: list[Encoded], pad_token_id: int, batch_size: int, cfg: RLConfig
) -> tuple[list[list[float]], list[float]]:
    """(each answer's per-token log-probabilities, each answer's mean next-token entropy), in the
    training precision; answers run in order of length so a batch pads little."""
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    logps: list[list[float]] = [[] for _ in encoded]
    entropy: list[float] = [0.0] * len(encoded)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        entropies: list[torch.Tensor] = []
        with precision(cfg, model):
            values, mask = answer_logprobs(model, [encoded[i] for i in chunk], pad_token_id, entropies=entropies)
        for row, i in enumerate(chunk):
            logps[i] = values[row][mask[row]].float().tolist()
            entropy[i] = (entropies[0][row].sum() / mask[row].sum().clamp(min=1)).item()
    return logps, entropy


def cached(path: Path | None, compute):
    if path is not None and path.exists():
        return json.loads(path.read_text())
    value = compute()
    if path is not None:
        atomic_write_text(path, json.dumps(value))
    return value


def _aligned(values: list[list[float]], rows: list[int], like: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token lists laid out where the batch's mask is True (row by row, in token order)."""
    flat = torch.tensor([v for i in rows for v in values[i]], dtype=like.dtype, device=like.device)
    return torch.zeros_like(like).masked_scatter(mask, flat)


def train_rl(
    loaded: LoadedModel,
    rollouts: list[Rollout],
    cfg: RLConfig,
    seed: int,
    reference: list[list[float]] | None = None,
    old_cache: Path | None = None,
    checkpointer: TrainCheckpointer | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    """Returns (trained model, per-step history, stats). reference: each answer's per-token
    log-probabilities under the reference (encode_rollouts' encoding), or None without a KL term."""
    if not rollouts:
        raise ValueError("RL needs at least one sampled answer with a non-zero advantage")
    tokenizer, pad = loaded.tokenizer, loaded.tokenizer.pad_token_id
    encoded = encode_rollouts(tokenizer, rollouts, cfg.max_length)
    torch.manual_seed(seed)
    model = lora.wrap(loaded.model, cfg.lora)
    if cfg.freeze_embeddings:
        freeze_embeddings(model)
    device = next(model.parameters()).device
    started = time.perf_counter()
    old, entropy = cached(old_cache, lambda: token_logprobs(model, encoded, pad, cfg.batch_size, cfg))
    old_seconds = time.perf_counter() - started
    advantages = torch.tensor([r.advantage for r in rollouts], device=device)

    def step(forward: torch.nn.Module, rows: list[int], batch: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        logps, mask = forward([encoded[i] for i in rows], pad)
        ref = _aligned(reference, rows, logps, mask) if reference is not None else None
        loss, metrics = clipped_policy_loss(
            logps, _aligned(old, rows, logps, mask), ref, mask, advantages[rows], cfg.clip, cfg.kl_coef
        )
        mean = lambda values: sum(values) / len(values)
        metrics |= {
            "reward": mean([rollouts[i].reward for i in rows]),
            "entropy": mean([entropy[i] for i in rows]),
            "length": mean([sum(1 for label in encoded[i].labels if label >= 0) for i in rows]),
        }
        share = len(rows) / len(batch)
        return loss * share, {k: v * share for k, v in metrics.items()}

    with activation_checkpointing(model, cfg.activation_checkpointing):
        lengths = [len(e.input_ids) for e in encoded]
        history = optimise(model, len(encoded), step, cfg, seed, "RL", checkpointer, lengths)
    stats = {
        "trained_answers": len(rollouts),
        "truncated": sum(e.truncated for e in encoded),
        "old_logprob_seconds": round(old_seconds, 2),
        "train_seconds": round(time.perf_counter() - started - old_seconds, 2),
    }
    return lora.unwrap(model), history, stats
