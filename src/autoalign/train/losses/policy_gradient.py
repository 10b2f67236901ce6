"""Online RL on groups of sampled answers: advantages from each prompt's group of rewards, and
the clipped policy-gradient loss with a KL penalty to the reference (train/rl.py trains with it).

    grpo  A_i = (r_i - mean(r)) / (std(r) + eps)         Shao et al. 2024, "DeepSeekMath", eq. 3
          (scale_rewards=False: A_i = r_i - mean(r), Liu et al. 2025, "Dr. GRPO")
    rloo  A_i = r_i - mean_{j != i} r_j                  Ahmadian et al. 2024, "Back to Basics"

    rho_t  = pi(o_t | q, o_<t) / pi_old(o_t | q, o_<t)
    L_t    = -min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A) + beta * KL_t
    KL_t   = pi_ref / pi - log(pi_ref / pi) - 1           (the unbiased, non-negative k3 estimate)
    loss   = mean over answers of (mean over the answer's tokens of L_t)

RLOO's paper uses one REINFORCE step per batch (rho = 1) with the KL in the reward; here both
share the clipped loss and the KL term, so they differ only in the baseline.
"""

from __future__ import annotations

import torch

STD_EPS = 1e-4


def group_advantages(rewards: torch.Tensor, algorithm: str, scale: bool = True) -> torch.Tensor:
    """rewards: (prompts, G) with G >= 2 answers per prompt. A group whose answers all got the
    same reward has advantage 0 everywhere (nothing to learn from it)."""
    group_size = rewards.shape[1]
    mean = rewards.mean(dim=1, keepdim=True)
    if algorithm == "rloo":
        return group_size / (group_size - 1) * (rewards - mean)  # r_i - mean of the others
    centred = rewards - mean
    return centred / (rewards.std(dim=1, keepdim=True) + STD_EPS) if scale else centred


def clipped_policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    clip: float,
    kl_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """logps / old_logps / ref_logps / mask: (answers, positions), per answer token (zero where the
    mask is False); advantages: (answers,). Returns the loss and its per-token diagnostics."""
    ratio = torch.exp(logps - old_logps)
    a = advantages[:, None]
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    per_token = -surrogate
    kl = torch.zeros_like(logps)
    if ref_logps is not None and kl_coef:
        log_ratio = ref_logps - logps
        kl = torch.exp(log_ratio) - log_ratio - 1
        per_token = per_token + kl_coef * kl
    lengths = mask.sum(-1).clamp(min=1)
    per_answer = (per_token * mask).sum(-1) / lengths
    loss = per_answer.mean()
    clipped = ((ratio - 1).abs() > clip) & mask
    tokens = mask.sum().clamp(min=1)
    return loss, {
        "loss": loss.item(),
        "kl": ((kl * mask).sum(-1) / lengths).mean().item(),
        "clip_fraction": (clipped.sum() / tokens).item(),
        "ratio": ((ratio * mask).sum() / tokens).item(),
    }
