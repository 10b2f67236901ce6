"""Losses as pure functions of log-probabilities. Each returns (loss, metrics).

Labels use the transformers convention: -100 marks tokens that carry no loss (the prompt,
padding), so a prompt token can never move the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label token under logits, and the mask of tokens that count.

    logits: (batch, seq, vocab) for positions 0..seq-1, predicting tokens 1..seq.
    labels: (batch, seq) aligned with the input ids; shifted here.
    """
    logits = logits[:, :-1, :]
    labels = labels[:, 1:]
    mask = labels != IGNORE_INDEX
    safe_labels = labels.masked_fill(~mask, 0)
    logps = torch.gather(F.log_softmax(logits.float(), dim=-1), 2, safe_labels.unsqueeze(-1)).squeeze(-1)
    return logps * mask, mask


def response_window(labels: torch.Tensor) -> int:
    """How many trailing positions' logits a loss needs: from the position that predicts the
    earliest answer token in the batch to the end. Prompt positions before it carry no loss, so
    their logits (a vocab-sized row each) need not be computed; pass this as `logits_to_keep`
    and the loss functions below to `labels[:, -window:]`."""
    has_loss = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    if len(has_loss) == 0:
        return 1
    return labels.shape[1] - int(has_loss[0]) + 1


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the response tokens' log-probabilities, one value per sequence: log pi(y|x)."""
    logps, _ = token_logprobs(logits, labels)
    return logps.sum(-1)


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean negative log-likelihood over response tokens of the whole batch."""
    logps, mask = token_logprobs(logits, labels)
    count = mask.sum().clamp(min=1)
    loss = -logps.sum() / count
    return loss, {"loss": loss.item(), "tokens": int(mask.sum())}


def dpo_sigmoid_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Direct Preference Optimization (Rafailov et al. 2023, eq. 7).

        r_w = beta * (log pi(y_w|x) - log pi_ref(y_w|x))      implicit reward of the chosen
        r_l = beta * (log pi(y_l|x) - log pi_ref(y_l|x))      implicit reward of the rejected
        loss = -mean(log sigmoid(r_w - r_l))

    When the policy equals the reference both rewards are 0 and the loss is ln 2. The gradient
    raises log pi(y_w|x) and lowers log pi(y_l|x), weighted by sigmoid(r_l - r_w).
    Inputs are per-sequence summed log-probabilities, shape (batch,). Optional per-pair weights
    (mixed feedback sources) scale each pair's term: loss = mean(w_i * l_i); the trainer scales
    weights to mean 1 over the dataset, so uniform weights give the plain loss.
    """
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    margins = chosen_rewards - rejected_rewards
    per_pair = -F.logsigmoid(margins)
    loss = (per_pair * weights).mean() if weights is not None else per_pair.mean()
    metrics = {
        "loss": loss.item(),
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/margins": margins.mean().item(),
        "rewards/accuracy": (margins > 0).float().mean().item(),
    }
    return loss, metrics
