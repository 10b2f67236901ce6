"""A Bradley-Terry reward model: a causal LM with a scalar head (transformers'
AutoModelForSequenceClassification, num_labels=1), trained on comparisons of two answers.

The reward of an answer is the head applied to the last hidden state of the last real token of
the chat-rendered prompt + answer (the same rendering generation and DPO use). The pooling is
done here, from the attention mask, rather than by the model class, which looks for the last
token that is not the pad token and so misreads answers that end in it (SmolLM2 pads with its
end-of-turn token). Saved with save_pretrained, the model loads as a sequence classifier in
transformers, and in TRL or vLLM as a reward model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from autoalign.config import TrainConfig
from autoalign.train import lora
from autoalign.train.data import Encoded, collate, encode_chat
from autoalign.train.loop import activation_checkpointing, freeze_embeddings, optimise, precision
from autoalign.train.losses.reward import confidence_loss
from autoalign.types import Message


@dataclass(frozen=True)
class Comparison:
    """Two answers to a prompt and the target probability that `first` is the better one."""

    prompt: list[Message]
    first: str
    second: str
    target: float = 1.0


def load_reward_model(path: str | Path, seed: int = 0) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The model at `path` with a fresh scalar head (seeded), in fp32, and its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


class RewardScores(torch.nn.Module):
    """rewards(examples) as a module's forward, so the training loop (and DDP) can wrap it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, examples: list[Encoded], pad_token_id: int) -> torch.Tensor:
        classifier = lora.base_model(self.model)
        batch = collate(examples, pad_token_id, next(classifier.parameters()).device)
        hidden = classifier.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        last = batch["attention_mask"].sum(dim=1) - 1  # right padding: the last real token
        pooled = hidden.last_hidden_state[torch.arange(len(examples), device=last.device), last]
        return classifier.score(pooled).squeeze(-1).float()


def encode(tokenizer, comparisons: list[Comparison], max_length: int) -> list[tuple[Encoded, Encoded]]:
    return [
        (encode_chat(tokenizer, c.prompt, c.first, max_length), encode_chat(tokenizer, c.prompt, c.second, max_length))
        for c in comparisons
    ]


def train_reward_model(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    comparisons: list[Comparison],
    cfg: TrainConfig,
    seed: int,
    confidence_alpha: float = 0.0,
    desc: str = "reward model",
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Bradley-Terry on the comparisons' targets; with confidence_alpha > 0, Burns et al.'s auxiliary
    confidence loss, its weight warmed up linearly over the first 20% of the examples seen."""
    if not comparisons:
        raise ValueError("a reward model needs at least one comparison to train on")
    encoded = encode(tokenizer, comparisons, cfg.max_length)
    targets = torch.tensor([c.target for c in comparisons], device=next(model.parameters()).device)
    model = lora.wrap(model, cfg.lora)
    if cfg.lora.enabled:  # the new head is trained in full, not through adapters
        lora.base_model(model).score.weight.requires_grad_(True)
    if cfg.freeze_embeddings:
        freeze_embeddings(lora.base_model(model))
    pad = tokenizer.pad_token_id
    seen = [0]
    total = max(1, round(cfg.epochs * len(comparisons)))

    def step(forward, rows: list[int], batch: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        rewards = forward([e for i in rows for e in encoded[i]], pad)
        margins = rewards[0::2] - rewards[1::2]
        alpha = confidence_alpha * min(1.0, seen[0] / (0.2 * total)) if confidence_alpha else 0.0
        seen[0] += len(rows)
        loss, metrics = confidence_loss(margins, targets[rows], alpha)
        share = len(rows) / len(batch)
        return loss * share, {k: v * share for k, v in metrics.items()}

    widths = [max(len(a.input_ids), len(b.input_ids)) for a, b in encoded]
    with activation_checkpointing(model, cfg.activation_checkpointing):
        history = optimise(model, len(encoded), step, cfg, seed, desc, lengths=widths, forward_module=RewardScores)
    return lora.unwrap(model), history


@torch.no_grad()
def reward_margins(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    comparisons: list[Comparison],
    cfg: TrainConfig,
    batch_size: int = 8,
) -> list[float]:
    """r(first) - r(second) for each comparison, under the training precision."""
    model.eval()
    scorer = RewardScores(model)
    encoded = encode(tokenizer, comparisons, cfg.max_length)
    margins: list[float] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        with precision(cfg, model):
            rewards = scorer([e for pair in chunk for e in pair], tokenizer.pad_token_id)
        margins += (rewards[0::2] - rewards[1::2]).tolist()
    return margins
