"""Ranking losses: every judged candidate of a prompt at once, not only best against worst.
Inputs are (groups, n) tensors: each candidate's mean log-probability per token under the
policy (the length-normalised score both papers rank by), its judge score (higher is better)
and a mask of the candidates present (groups may have fewer than n). Candidates with equal
scores are not ordered against each other. Both are reference-free, and both papers add an
SFT term on the best candidate (the trainer's dpo.sft_weight term; default_sft_weight here).

    rrhf  sum over r_i < r_j of max(0, p_i - p_j)                           Yuan et al. 2023
    pro   -sum_k log softmax over {k} + {i : r_i < r_k} of p * (reward gap), at k  Song et al. 2024
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from autoalign.train.losses.dpo import weighted_mean


def ordered_pairs(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(groups, n, n) bool: [g, i, j] when candidates i and j are both present and r_i < r_j."""
    present = mask[:, :, None] & mask[:, None, :]
    return present & (rewards[:, :, None] < rewards[:, None, :])


def ranking_metrics(loss: torch.Tensor, scores: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor) -> dict:
    """accuracy: of the ordered pairs, how many the policy's scores order the same way; margin:
    the best candidate's score minus the worst's, per group."""
    worse_better = ordered_pairs(rewards, mask)
    agree = (scores[:, :, None] < scores[:, None, :]) & worse_better
    filled = lambda fill: torch.where(mask, rewards, torch.full_like(rewards, fill))
    best, worst = filled(-torch.inf).argmax(-1), filled(torch.inf).argmin(-1)
    rows = torch.arange(len(scores), device=scores.device)
    return {
        "loss": loss.item(),
        "rewards/accuracy": (agree.sum() / worse_better.sum().clamp(min=1)).item(),
        "rewards/margins": (scores[rows, best] - scores[rows, worst]).mean().item(),
    }


def rrhf_loss(
    scores: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """RRHF's ranking loss (Yuan et al. 2023, "RRHF: Rank Responses to Align Language Models
    with Human Feedback without tears", eq. 2), p_i = mean log pi(y_i|x) per token:

        L_rank = sum over (i, j) with r_i < r_j of max(0, p_i - p_j)

    summed over a prompt's ordered pairs, averaged over prompts. Zero once the scores are in
    the judge's order; a misordered pair pushes its worse candidate down and its better one up
    with unit gradient. The paper's L_ft (cross-entropy on the best) is the SFT term."""
    gaps = torch.relu(scores[:, :, None] - scores[:, None, :]) * ordered_pairs(rewards, mask)
    loss = weighted_mean(gaps.sum((1, 2)), weights)
    return loss, ranking_metrics(loss, scores.detach(), rewards, mask)


@dataclass(frozen=True)
class RRHFLoss:
    reference_free = True
    kind = "ranking"
    default_sft_weight = 1.0
    """RRHF's L = L_rank + L_ft, the two unweighted."""

    def __call__(self, scores, rewards, mask, weights=None):
        return rrhf_loss(scores, rewards, mask, weights)


def pro_loss(
    scores: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Preference Ranking Optimisation (Song et al. 2024, "Preference Ranking Optimization for
    Human Alignment", eqs. 4-9), p_i = mean log pi(y_i|x) per token. For each candidate k with a
    worse one, a softmax over k and every worse candidate i picks k:

        L_k = -log [exp(p_k / T_kk) / (exp(p_k / T_kk) + sum over r_i < r_k of exp(p_i / T_ki))]
        T_ki = 1 / (r_k - r_i)   (a wide reward gap makes i's competition sharper)
        T_kk = min over i of T_ki
        loss = mean over prompts of sum_k L_k

    With two candidates and scores 1 and 0 this is -log sigmoid(p_w - p_l), pairwise. Candidates
    tied with k are neither above nor below it."""
    below = ordered_pairs(rewards, mask).transpose(1, 2)  # [g, k, i]: r_i < r_k
    gap = (rewards[:, :, None] - rewards[:, None, :]).clamp(min=0) * below
    own_scale = gap.amax(-1)  # 1 / T_kk = the largest gap, 0 where k has nothing below it
    competing = torch.where(below, scores[:, None, :] * gap, torch.full_like(gap, -torch.inf))
    own = scores * own_scale
    denominator = torch.logsumexp(torch.cat([own[:, :, None], competing], dim=-1), dim=-1)
    has_worse = below.any(-1)
    per_k = torch.where(has_worse, denominator - own, torch.zeros_like(own))
    loss = weighted_mean(per_k.sum(-1), weights)
    return loss, ranking_metrics(loss, scores.detach(), rewards, mask)


@dataclass(frozen=True)
class PROLoss:
    reference_free = True
    kind = "ranking"
    default_sft_weight = 0.1
    """PRO adds beta x L_SFT on the best candidate; the paper tunes beta, 0.1 here."""

    def __call__(self, scores, rewards, mask, weights=None):
        return pro_loss(scores, rewards, mask, weights)
