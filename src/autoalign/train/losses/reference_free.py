"""Pairwise preference losses without a reference model: the trainer skips the reference pass.

    slic   max(0, 1 - beta (log pi(y_w|x) - log pi(y_l|x)))                 Zhao et al. 2023
    simpo  -log sigmoid(beta (mean log pi(y_w|x) - mean log pi(y_l|x)) - gamma)   Meng et al. 2024
    orpo   -beta log sigmoid(log odds(y_w|x) - log odds(y_l|x)),
           odds(y|x) = p / (1 - p), p = exp(mean log pi(y|x))                  Hong et al. 2024

Each paper pairs its term with an SFT term on the chosen answer, which the trainer adds as
dpo.sft_weight x the chosen answers' mean token NLL (train.losses.with_chosen_nll); the loss's
default_sft_weight is that weight when the recipe leaves dpo.sft_weight unset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from autoalign.train.losses.dpo import reward_metrics, weighted_mean


def slic_hinge_loss(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, beta: float, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """SLiC-HF's rank calibration loss (Zhao et al. 2023, "SLiC-HF: Sequence Likelihood
    Calibration with Human Feedback", eq. 1), with margin delta = 1 / beta and scaled by beta:

        loss = mean(max(0, 1 - beta (log pi(y_w|x) - log pi(y_l|x))))  = beta * max(0, delta - ...)

    Zero once the chosen answer is delta nats more likely than the rejected one; below that the
    gradient is a constant beta on both log-likelihoods. At equal likelihoods the loss is 1."""
    margins = policy_chosen - policy_rejected
    loss = weighted_mean(torch.relu(1 - beta * margins), weights)
    return loss, reward_metrics(loss, beta * policy_chosen, beta * policy_rejected)


@dataclass(frozen=True)
class SLiCLoss:
    beta: float
    reference_free = True
    default_sft_weight = 1.0
    """SLiC-HF's regulariser: cross-entropy on the chosen (SFT) target; lambda is not fixed there."""

    def __call__(self, chosen, rejected, reference, weights=None):
        return slic_hinge_loss(chosen.logps, rejected.logps, self.beta, weights)


def simpo_loss(
    chosen_mean: torch.Tensor,
    rejected_mean: torch.Tensor,
    beta: float,
    gamma: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free
    Reward", eq. 6). chosen_mean / rejected_mean: each answer's mean log-probability per token.

        r = beta * mean log pi(y|x)              length-normalised implicit reward
        loss = -mean(log sigmoid(r_w - r_l - gamma))

    The reward is the quantity generation ranks by (per-token likelihood), so no reference is
    needed, and long answers get no advantage from length. gamma is a target margin: at equal
    rewards the loss is -log sigmoid(-gamma) (ln 2 at gamma = 0). The paper's beta is 2 to 10."""
    chosen_rewards, rejected_rewards = beta * chosen_mean, beta * rejected_mean
    per_pair = -F.logsigmoid(chosen_rewards - rejected_rewards - gamma)
    loss = weighted_mean(per_pair, weights)
    return loss, reward_metrics(loss, chosen_rewards, rejected_rewards)


@dataclass(frozen=True)
class SimPOLoss:
    beta: float
    simpo_gamma: float
    reference_free = True

    def __call__(self, chosen, rejected, reference, weights=None):
        return simpo_loss(-chosen.nll, -rejected.nll, self.beta, self.simpo_gamma, weights)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate both near 0 and far below (Maechler 2012). x is kept
    below -1e-6: an empty answer (mean 0) would otherwise give -inf."""
    x = x.clamp(max=-1e-6)
    return torch.where(x > -0.6931, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_odds_ratio_loss(
    chosen_mean: torch.Tensor,
    rejected_mean: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """ORPO's odds-ratio term (Hong et al. 2024, "ORPO: Monolithic Preference Optimization
    without Reference Model", eqs. 4-7), beta being the paper's lambda. chosen_mean /
    rejected_mean: mean log-probability per answer token, so P(y|x) = exp(mean) is in (0, 1).

        log odds(y|x) = log P(y|x) - log(1 - P(y|x))
        loss = -beta * mean(log sigmoid(log odds(y_w|x) - log odds(y_l|x)))

    ORPO's whole loss is this plus the chosen answer's NLL (default_sft_weight 1): SFT that
    also lowers the odds of the rejected answer, from the policy alone. At equal likelihoods
    the term is beta ln 2."""
    log_odds = (chosen_mean - rejected_mean) - (log1mexp(chosen_mean) - log1mexp(rejected_mean))
    loss = weighted_mean(-beta * F.logsigmoid(log_odds), weights)
    metrics = reward_metrics(loss, beta * chosen_mean, beta * rejected_mean)
    return loss, {**metrics, "log_odds_ratio": log_odds.mean().item()}


@dataclass(frozen=True)
class ORPOLoss:
    beta: float
    reference_free = True
    default_sft_weight = 1.0

    def __call__(self, chosen, rejected, reference, weights=None):
        return orpo_odds_ratio_loss(-chosen.nll, -rejected.nll, self.beta, weights)
