"""Tokenization for training: chat rendering through autoalign.chat, loss only on the answer.

Prompt and answer are tokenized separately and concatenated, exactly as generation sees them
(the prompt is tokenized alone, the answer is what the model produced after it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedTokenizerBase

from autoalign.chat import as_text, render_completion
from autoalign.train import lora
from autoalign.train.losses import IGNORE_INDEX, label_logprobs, response_window
from autoalign.types import Message, Pair


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def encode_chat(
    tokenizer: PreTrainedTokenizerBase, prompt: list[Message], response: str, max_length: int, finished: bool = True
) -> Encoded:
    """finished=False: an answer cut off at max tokens, encoded without the end-of-turn marker the
    model never produced (online RL must not credit or blame a token that was not sampled)."""
    prompt_text, response_text = render_completion(tokenizer, prompt, response)
    if not finished:
        response_text = as_text(tokenizer, response)
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


LOGIT_CHUNK_ELEMENTS = 2**25
"""Vocabulary-sized logits computed at once: 128 MB in fp32 (~680 positions of SmolLM2's 49k
vocabulary, 128 of Gemma 3's 262k), whatever the batch and answer lengths."""


def answer_logprobs(
    model: torch.nn.Module,
    examples: list[Encoded],
    pad_token_id: int,
    chunk_elements: int = LOGIT_CHUNK_ELEMENTS,
    entropies: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of every answer token and the mask of tokens that count, (batch, positions)
    each, log-probabilities zero where the mask is False (as losses.token_logprobs).

    The (batch, length, vocab) logits are never held whole: the decoder's hidden states are
    projected to the vocabulary a chunk of positions at a time, starting from the position that
    predicts the batch's earliest answer token (prompt positions carry no loss). Under autograd
    each chunk is checkpointed: backward recomputes its logits instead of keeping them, so
    training memory holds hidden states (hidden_size per position), not logits (vocab_size).
    entropies: a list that receives the entropy of the next-token distribution at each position,
    (batch, positions) like the log-probabilities (without autograd only)."""
    batch = collate(examples, pad_token_id, next(model.parameters()).device)
    start = batch["labels"].shape[1] - response_window(batch["labels"])
    causal = lora.base_model(model)
    decoder = causal.get_decoder()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    hidden = hidden.last_hidden_state[:, start:-1]  # position i predicts token i + 1
    labels = batch["labels"][:, start + 1 :]
    mask = labels != IGNORE_INDEX
    targets = labels.masked_fill(~mask, 0)
    head, softcap = causal.get_output_embeddings(), getattr(causal.config, "final_logit_softcapping", None)
    step = max(1, chunk_elements // (hidden.shape[0] * head.weight.shape[0]))
    chunks, entropy_chunks = [], []
    for first in range(0, hidden.shape[1], step):
        args = (head, softcap, hidden[:, first : first + step], targets[:, first : first + step])
        if torch.is_grad_enabled():
            chunks.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False))
        else:
            chunks.append(_chunk_logprobs(*args, entropy=entropy_chunks if entropies is not None else None))
    logps = torch.cat(chunks, dim=1) if chunks else hidden.new_zeros(labels.shape, dtype=torch.float)
    if entropies is not None:
        entropies.append(torch.cat(entropy_chunks, dim=1) * mask if entropy_chunks else torch.zeros_like(logps))
    return logps * mask, mask


class AnswerLogprobs(torch.nn.Module):
    """answer_logprobs(model, examples, pad_token_id) as a module's forward pass, so that a
    data-parallel wrapper (DDP) sees the forward it must prepare gradient averaging for."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, examples: list[Encoded], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        return answer_logprobs(self.model, examples, pad_token_id)


def _chunk_logprobs(
    head: torch.nn.Module,
    softcap: float | None,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    entropy: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    logits = head(hidden)
    if softcap:  # Gemma 2-style final logit soft-capping, as the model's own forward applies it
        logits = torch.tanh(logits.float() / softcap) * softcap
    if entropy is not None:  # H = -sum p log p, from the same logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        entropy.append(-(logprobs.exp() * logprobs).sum(-1))
    return label_logprobs(logits, targets)
