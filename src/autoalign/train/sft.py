"""Supervised fine-tuning on chat examples, loss on the assistant's answer only."""

from __future__ import annotations

import torch

from autoalign.config import SFTConfig
from autoalign.models.loading import LoadedModel
from autoalign.train import lora
from autoalign.train.data import answer_logprobs, encode_chat
from autoalign.train.loop import activation_checkpointing, autocast_mode, freeze_embeddings, optimise
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.losses import mean_nll
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

    def step(indices: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        return mean_nll(*answer_logprobs(model, [encoded[i] for i in indices], tokenizer.pad_token_id))

    with activation_checkpointing(model, cfg.activation_checkpointing):
        lengths = [len(e.input_ids) for e in encoded]
        history = optimise(model, len(encoded), step, cfg, seed, "SFT", checkpointer, lengths)
    stats = {
        "examples": len(encoded),
        "truncated": sum(e.truncated for e in encoded),
        "autocast": autocast_mode(cfg, model),
    }
    return lora.unwrap(model), history, stats
