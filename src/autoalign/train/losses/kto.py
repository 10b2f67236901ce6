"""Kahneman-Tversky Optimisation (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect
Theoretic Optimization", eq. 7): a loss on single answers labelled desirable or undesirable,
so it needs no pairs (a verifier's pass/fail, a judge's score over a threshold).

    r(x, y) = log pi(y|x) - log pi_ref(y|x)
    z0      = max(0, mean_j r(x_j, y'_j))      the reference point: a KL estimate from answers
                                               y'_j given to other prompts, no gradient
    v(x, y) = lambda_D sigmoid(beta (r - z0))  if y is desirable
              lambda_U sigmoid(beta (z0 - r))  if y is undesirable
    loss    = mean(lambda_y - v(x, y))

The trainer builds each answer's mismatched partner (another prompt's answer) and passes the
batch's log-ratios on those as kl_policy - kl_reference. At the reference (r = 0, z0 = 0) every
term is lambda / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from autoalign.train.losses.dpo import weighted_mean


def kto_reference_point(kl_policy: torch.Tensor, kl_reference: torch.Tensor) -> torch.Tensor:
    """z0 = max(0, mean(log pi(y'|x) - log pi_ref(y'|x))), detached (the paper's biased but
    low-variance estimate of KL(pi || pi_ref), from mismatched prompt-answer pairs)."""
    return (kl_policy - kl_reference).mean().clamp(min=0).detach()


def kto_loss(
    policy: torch.Tensor,
    reference: torch.Tensor,
    desirable: torch.Tensor,
    z0: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """policy / reference: summed log-probabilities of each answer, (batch,); desirable: bool,
    (batch,); z0: the reference point (kto_reference_point)."""
    ratios = policy - reference
    lam = torch.where(desirable, desirable_weight, undesirable_weight).to(ratios.dtype)
    value = torch.where(desirable, torch.sigmoid(beta * (ratios - z0)), torch.sigmoid(beta * (z0 - ratios)))
    loss = weighted_mean(lam * (1 - value), weights)
    rewards = beta * ratios.detach()
    good, bad = rewards[desirable], rewards[~desirable]
    mean = lambda t: t.mean().item() if len(t) else 0.0
    # Accuracy as for pairs: a desirable answer's implicit reward above the reference point,
    # an undesirable one's below it.
    right = torch.where(desirable, ratios > z0, ratios < z0).float()
    return loss, {
        "loss": loss.item(),
        "kl": float(z0),
        "rewards/chosen": mean(good),
        "rewards/rejected": mean(bad),
        "rewards/margins": mean(good) - mean(bad),
        "rewards/accuracy": right.mean().item(),
    }


@dataclass(frozen=True)
class KTOLoss:
    """Unpaired: called as loss(policy, reference, desirable, z0, weights) on single answers."""

    beta: float
    desirable_weight: float
    undesirable_weight: float
    reference_free = False
    kind = "unpaired"

    def __call__(self, policy, reference, desirable, z0, weights=None):
        return kto_loss(
            policy, reference, desirable, z0, self.beta, self.desirable_weight, self.undesirable_weight, weights
        )
