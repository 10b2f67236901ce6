"""Losses as pure functions of log-probabilities. Each returns (loss, metrics).

Labels use the transformers convention: -100 marks tokens that carry no loss (the prompt,
padding), so a prompt token can never move the loss.

Preference losses share one protocol (PreferenceLoss): they read per-sequence records
(SequenceScores: summed log-probability, token count, mean NLL) of the chosen and rejected
answers under the policy, and the reference's summed log-probabilities unless the loss is
reference-free. Each family is one file here (dpo.py, ...), registered by name in
autoalign/registry.py; the trainer calls the loss the recipe names (dpo.loss).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import torch

from autoalign.train.losses.dpo import dpo_sigmoid_loss  # re-exported; the maths lives in dpo.py

__all__ = [
    "IGNORE_INDEX",
    "chosen_nll_weight",
    "PreferenceLoss",
    "SequenceScores",
    "dpo_sigmoid_loss",
    "label_logprobs",
    "loss_class",
    "loss_kind",
    "preference_loss",
    "response_window",
    "sequence_logprobs",
    "sequence_scores",
    "sft_loss",
    "mean_nll",
    "token_logprobs",
    "with_chosen_nll",
]

IGNORE_INDEX = -100


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label token under logits, and the mask of tokens that count.

    logits: (batch, seq, vocab) for positions 0..seq-1, predicting tokens 1..seq.
    labels: (batch, seq) aligned with the input ids; shifted here.
    """
    labels = labels[:, 1:]
    mask = labels != IGNORE_INDEX
    return label_logprobs(logits[:, :-1, :], labels.masked_fill(~mask, 0)) * mask, mask


def label_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] at each position, in fp32 (no shift: logits[..., i, :] scores
    targets[..., i], which must be valid token ids)."""
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def response_window(labels: torch.Tensor) -> int:
    """How many trailing positions' logits a loss needs: from the position that predicts the
    earliest answer token in the batch to the end. Prompt positions before it carry no loss, so
    their logits (a vocab-sized row each) need not be computed; pass this as `logits_to_keep`
    and the loss functions below to `labels[:, -window:]`."""
    has_loss = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    if len(has_loss) == 0:
        return 1
    # A label at position 0 is never predicted (nothing precedes it): the window is at most the sequence.
    return min(labels.shape[1] - int(has_loss[0]) + 1, labels.shape[1])


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the response tokens' log-probabilities, one value per sequence: log pi(y|x)."""
    logps, _ = token_logprobs(logits, labels)
    return logps.sum(-1)


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean negative log-likelihood over response tokens of the whole batch."""
    return mean_nll(*token_logprobs(logits, labels))


def mean_nll(
    logps: torch.Tensor, mask: torch.Tensor, tokens: int | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """sft_loss from per-token log-probabilities (already zero where mask is False). tokens: the
    count to divide by, when these rows are one process's share of a batch with that many answer
    tokens (by default, the rows' own)."""
    loss = -logps.sum() / (mask.sum().clamp(min=1) if tokens is None else max(tokens, 1))
    return loss, {"loss": loss.item(), "tokens": int(mask.sum())}


@dataclass(frozen=True)
class SequenceScores:
    """Per-sequence quantities of a batch of answers, each of shape (batch,)."""

    logps: torch.Tensor
    """Sum of the answer tokens' log-probabilities: log pi(y|x)."""
    tokens: torch.Tensor
    """How many answer tokens each sequence has (for length-normalised losses)."""

    @property
    def nll(self) -> torch.Tensor:
        """Mean negative log-likelihood per answer token."""
        return -self.logps / self.tokens.clamp(min=1)

    @classmethod
    def from_tokens(cls, logps: torch.Tensor, mask: torch.Tensor) -> SequenceScores:
        """From per-token log-probabilities (zero where mask is False), each (batch, seq)."""
        return cls(logps=logps.sum(-1), tokens=mask.sum(-1))


def sequence_scores(logits: torch.Tensor, labels: torch.Tensor) -> SequenceScores:
    return SequenceScores.from_tokens(*token_logprobs(logits, labels))


def with_chosen_nll(
    loss: torch.Tensor, metrics: dict[str, float], chosen: SequenceScores, weights: torch.Tensor, sft_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """A preference loss plus sft_weight x the chosen answers' mean token NLL (RPO, Pang et al.
    2024, "Iterative Reasoning Preference Optimization", eq. 1, with the NLL length-normalised):

        loss' = loss + sft_weight * mean_i(w_i * NLL_i),   NLL_i = -log pi(y_w,i|x_i) / |y_w,i|

    DPO alone only widens the margin and may lower the chosen answer's likelihood too; the NLL
    term also imitates it. w: the pair weights (mean 1 over the dataset)."""
    if not sft_weight:
        return loss, metrics
    nll = (chosen.nll * weights).mean()
    total = loss + sft_weight * nll
    return total, {**metrics, "loss": total.item(), "chosen_nll": nll.item()}


class PreferenceLoss(Protocol):
    """A loss over preference pairs. reference: the reference model's summed log-probabilities
    of the chosen and rejected answers, None for a reference-free loss (the trainer then does
    not compute them). weights: per-pair weights with mean 1 over the dataset, or None.

    Losses of another `kind` than "pairs" are called differently (the trainer, train/dpo.py,
    builds their data): "ranking" (losses/ranking.py) as loss(scores, rewards, mask, weights)
    on every judged answer of a prompt; "unpaired" (losses/kto.py) as loss(policy, reference,
    desirable, z0, weights) on single answers; "hindsight" (train/hindsight.py) is SFT.
    default_sft_weight: dpo.sft_weight when the recipe leaves it unset (the SFT term of the
    loss's paper); 0 when absent."""

    reference_free: bool

    def __call__(
        self,
        chosen: SequenceScores,
        rejected: SequenceScores,
        reference: tuple[torch.Tensor, torch.Tensor] | None,
        weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


def loss_class(name: str) -> type:
    """The registered loss class `name` (autoalign/registry.py PREFERENCE_LOSSES), imported now."""
    from autoalign.registry import PREFERENCE_LOSSES, load_attr

    return load_attr(PREFERENCE_LOSSES[name])


def preference_loss(name: str, **settings) -> PreferenceLoss:
    """The registered loss `name`, built with the settings its fields name (beta,
    label_smoothing, simpo_gamma, ...: the dpo section's values); other settings are ignored."""
    cls = loss_class(name)
    return cls(**{f.name: settings[f.name] for f in fields(cls)})


def loss_kind(loss: object) -> str:
    return getattr(loss, "kind", "pairs")


def chosen_nll_weight(name: str, sft_weight: float | None) -> float:
    """dpo.sft_weight, or when unset the loss's default_sft_weight (the SFT term of its paper)."""
    return sft_weight if sft_weight is not None else getattr(loss_class(name), "default_sft_weight", 0.0)
