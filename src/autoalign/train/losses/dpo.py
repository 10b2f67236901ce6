"""Direct Preference Optimization (Rafailov et al. 2023) and the variants that keep its reference
model and change only what is done with the margin of implicit rewards:

    h = (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))

    dpo / sigmoid  -log sigmoid(beta h)                                      Rafailov et al. 2023
    cdpo           -(1-e) log sigmoid(beta h) - e log sigmoid(-beta h)       Mitchell 2023
    robust         (-(1-e) log sigmoid(beta h) + e log sigmoid(-beta h)) / (1 - 2e)   Chowdhury et al. 2024
    ipo            (h_avg - 1/(2 beta))^2, h on per-token log-probs           Azar et al. 2023

e (dpo.label_smoothing) is the assumed rate of flipped labels, which self-judged pairs have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def weighted_mean(per_pair: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """mean(w_i * l_i); the trainer scales weights to mean 1 over the dataset."""
    return (per_pair * weights).mean() if weights is not None else per_pair.mean()


def reward_metrics(loss: torch.Tensor, chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict:
    margins = chosen_rewards - rejected_rewards
    return {
        "loss": loss.item(),
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/margins": margins.mean().item(),
        "rewards/accuracy": (margins > 0).float().mean().item(),
    }


def dpo_sigmoid_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Direct Preference Optimization (Rafailov et al. 2023, eq. 7), conservative with
    label_smoothing e > 0 (Mitchell 2023, "A note on DPO with noisy preferences"):

        r_w = beta * (log pi(y_w|x) - log pi_ref(y_w|x))      implicit reward of the chosen
        r_l = beta * (log pi(y_l|x) - log pi_ref(y_l|x))      implicit reward of the rejected
        loss = -mean((1 - e) log sigmoid(r_w - r_l) + e log sigmoid(r_l - r_w))

    When the policy equals the reference both rewards are 0 and the loss is ln 2. The gradient
    raises log pi(y_w|x) and lowers log pi(y_l|x), weighted by sigmoid(r_l - r_w) - e: with e > 0
    it stops pushing once sigmoid(r_w - r_l) reaches 1 - e, so a flipped label costs a bounded
    amount. Inputs are per-sequence summed log-probabilities, shape (batch,). Optional per-pair
    weights (mixed feedback sources) scale each pair's term: loss = mean(w_i * l_i).
    """
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    margins = chosen_rewards - rejected_rewards
    per_pair = -(1 - label_smoothing) * F.logsigmoid(margins) - label_smoothing * F.logsigmoid(-margins)
    loss = weighted_mean(per_pair, weights)
    return loss, reward_metrics(loss, chosen_rewards, rejected_rewards)


@dataclass(frozen=True)
class DPOLoss:
    """dpo_sigmoid_loss over per-sequence records; needs the reference."""

    beta: float
    reference_free = False

    def __call__(self, chosen, rejected, reference, weights=None):
        return dpo_sigmoid_loss(chosen.logps, rejected.logps, reference[0], reference[1], self.beta, weights)


@dataclass(frozen=True)
class ConservativeDPOLoss:
    """cDPO: DPO with label smoothing e (dpo.label_smoothing), for labels flipped at rate e."""

    beta: float
    label_smoothing: float
    reference_free = False

    def __call__(self, chosen, rejected, reference, weights=None):
        return dpo_sigmoid_loss(
            chosen.logps, rejected.logps, reference[0], reference[1], self.beta, weights, self.label_smoothing
        )


def robust_dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    label_smoothing: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Robust DPO (Chowdhury et al. 2024, "Provably Robust DPO", eq. 7): an unbiased estimate of
    the loss on clean labels when each label is flipped with probability e < 1/2:

        l(h) = -log sigmoid(beta h)
        loss = mean(((1 - e) l(h) - e l(-h)) / (1 - 2e))

    The expectation over a flip at rate e of this loss is the clean DPO loss. At h = 0 it is
    ln 2 whatever e; e = 0 is DPO. Unlike cDPO its gradient never vanishes on a pair."""
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    margins = chosen_rewards - rejected_rewards
    e = label_smoothing
    per_pair = (-(1 - e) * F.logsigmoid(margins) + e * F.logsigmoid(-margins)) / (1 - 2 * e)
    loss = weighted_mean(per_pair, weights)
    return loss, reward_metrics(loss, chosen_rewards, rejected_rewards)


@dataclass(frozen=True)
class RobustDPOLoss:
    beta: float
    label_smoothing: float
    reference_free = False

    def __call__(self, chosen, rejected, reference, weights=None):
        return robust_dpo_loss(
            chosen.logps, rejected.logps, reference[0], reference[1], self.beta, self.label_smoothing, weights
        )


def ipo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    chosen_tokens: torch.Tensor,
    rejected_tokens: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Identity Preference Optimisation (Azar et al. 2023, "A General Theoretical Paradigm to
    Understand Learning from Human Preferences", eq. 17), beta being the paper's tau:

        h_avg = (log pi(y_w|x) - log pi_ref(y_w|x)) / |y_w| - (log pi(y_l|x) - log pi_ref(y_l|x)) / |y_l|
        loss  = mean((h_avg - 1 / (2 beta))^2)

    A squared loss regresses the margin to a finite target instead of pushing it to infinity, so
    IPO does not overfit deterministic preferences. The log-ratios are per answer token (as the
    paper's experiments and TRL do): with sums, the target would mean less the longer the answers.
    At the reference h_avg = 0 and the loss is 1 / (4 beta^2)."""
    chosen_ratio = (policy_chosen - reference_chosen) / chosen_tokens.clamp(min=1)
    rejected_ratio = (policy_rejected - reference_rejected) / rejected_tokens.clamp(min=1)
    per_pair = (chosen_ratio - rejected_ratio - 1 / (2 * beta)) ** 2
    loss = weighted_mean(per_pair, weights)
    return loss, reward_metrics(
        loss, beta * (policy_chosen - reference_chosen), beta * (policy_rejected - reference_rejected)
    )


@dataclass(frozen=True)
class IPOLoss:
    beta: float
    reference_free = False

    def __call__(self, chosen, rejected, reference, weights=None):
        return ipo_loss(
            chosen.logps, rejected.logps, reference[0], reference[1], chosen.tokens, rejected.tokens, self.beta, weights
        )
