"""Tokenization for training: chat rendering through autoalign.chat, loss only on the answer.

Prompt and answer are tokenized separately and concatenated, exactly as generation sees them
(the prompt is tokenized alone, the answer is what the model produced after it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from autoalign.chat import render_completion
from autoalign.train.losses import IGNORE_INDEX, response_window
from autoalign.types import Message, Pair


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def encode_chat(tokenizer: PreTrainedTokenizerBase, prompt: list[Message], response: str, max_length: int) -> Encoded:
    prompt_text, response_text = render_completion(tokenizer, prompt, response)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False).input_ids
    response_ids = tokenizer(response_text, add_special_tokens=False).input_ids
    truncated = len(prompt_ids) + len(response_ids) > max_length
    if truncated:
        # Keep at least half the budget for the answer: the prompt loses its start first.
        prompt_budget = max(max_length - len(response_ids), max_length // 2)
        prompt_ids = prompt_ids[-prompt_budget:]
        response_ids = response_ids[: max_length - len(prompt_ids)]
    return Encoded(
        input_ids=prompt_ids + response_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + response_ids,
        truncated=truncated,
    )


def encode_pair(tokenizer: PreTrainedTokenizerBase, pair: Pair, max_length: int) -> tuple[Encoded, Encoded]:
    return (
        encode_chat(tokenizer, pair.prompt, pair.chosen, max_length),
        encode_chat(tokenizer, pair.prompt, pair.rejected, max_length),
    )


def collate(examples: list[Encoded], pad_token_id: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding carries no loss and no attention."""
    width = max(len(e.input_ids) for e in examples)
    padded = lambda values, fill: [list(v) + [fill] * (width - len(v)) for v in values]
    return {
        "input_ids": torch.tensor(
            padded([e.input_ids for e in examples], pad_token_id), dtype=torch.long, device=device
        ),
        "labels": torch.tensor(padded([e.labels for e in examples], IGNORE_INDEX), dtype=torch.long, device=device),
        "attention_mask": torch.tensor(
            padded([[1] * len(e.input_ids) for e in examples], 0), dtype=torch.long, device=device
        ),
    }


def answer_logits(
    model: torch.nn.Module, examples: list[Encoded], pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) over the positions a loss needs: the model computes logits only from
    the position predicting the batch's earliest answer token (`logits_to_keep`), and labels are
    cut to match, so prompt positions never pay for a vocabulary-sized logit row."""
    batch = collate(examples, pad_token_id, next(model.parameters()).device)
    window = response_window(batch["labels"])
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=window).logits
    return logits, batch["labels"][:, -window:]
