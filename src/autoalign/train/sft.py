"""Supervised fine-tuning on chat examples, loss on the assistant's answer only."""

from __future__ import annotations

import torch

from autoalign.config import SFTConfig
from autoalign.models.loading import LoadedModel
from autoalign.train import lora
from autoalign.train.data import encode_chat
from autoalign.train.loop import activation_checkpointing, autocast_mode, freeze_embeddings, optimise
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.losses import IGNORE_INDEX, mean_nll
from autoalign.types import Message


def train_sft(
    loaded: LoadedModel,
    conversations: list[list[Message]],
    cfg: SFTConfig,
    seed: int,
    checkpointer: TrainCheckpointer | None = None,
) -> tuple[torch.nn.Module, list[dict[str, float]], dict]:
    """conversations: message lists ending with the assistant answer to learn."""
    if not conversations:
        raise ValueError("SFT needs at least one example")
    tokenizer = loaded.tokenizer
    encoded = [encode_chat(tokenizer, conv[:-1], conv[-1]["content"], cfg.max_length) for conv in conversations]
    torch.manual_seed(seed)
    model = lora.wrap(loaded.model, cfg.lora)
    if cfg.freeze_embeddings:
        freeze_embeddings(model)

    answer_tokens = [sum(label != IGNORE_INDEX for label in e.labels[1:]) for e in encoded]

    def step(forward: torch.nn.Module, rows: list[int], batch: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        # The mean over the whole batch's answer tokens, of which these rows hold a share.
        logps, mask = forward([encoded[i] for i in rows], tokenizer.pad_token_id)
        return mean_nll(logps, mask, tokens=sum(answer_tokens[i] for i in batch))

    with activation_checkpointing(model, cfg.activation_checkpointing):
        lengths = [len(e.input_ids) for e in encoded]
        history = optimise(model, len(encoded), step, cfg, seed, "SFT", checkpointer, lengths)
    stats = {
        "examples": len(encoded),
        "truncated": sum(e.truncated for e in encoded),
        "autocast": autocast_mode(cfg, model),
    }
    return lora.unwrap(model), history, stats
