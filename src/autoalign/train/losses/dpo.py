"""Direct Preference Optimization (Rafailov et al. 2023): the sigmoid loss on the difference of
implicit rewards, and its PreferenceLoss wrapper ("dpo" in the registry)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


@dataclass(frozen=True)
class DPOLoss:
    """dpo_sigmoid_loss over per-sequence records; needs the reference."""

    beta: float
    reference_free = False

    def __call__(self, chosen, rejected, reference, weights=None):
        return dpo_sigmoid_loss(chosen.logps, rejected.logps, reference[0], reference[1], self.beta, weights)
