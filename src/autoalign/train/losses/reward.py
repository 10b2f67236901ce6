"""Reward-model losses on the reward margin of a comparison, m = r(first) - r(second).

Bradley-Terry (Bradley & Terry 1952; the reward model of Ouyang et al. 2022, eq. 1) with a
target probability t that `first` is the better answer (1 or 0 for a hard label, in between for
a soft one, e.g. a judge's p_first):

    loss = -mean(w * (t * log sigmoid(m) + (1 - t) * log sigmoid(-m)))

At m = 0 the loss is ln 2 whatever t is. With t = 1 it is -log sigmoid(m), the usual pairwise
reward-model loss; its gradient raises r(first) and lowers r(second).

Auxiliary confidence loss (Burns et al. 2023, "Weak-to-Strong Generalization", section 4.3.2):
a strong student trained on a weak supervisor's labels is also pulled toward its own hardened
predictions, so it can disagree with the supervisor where it is confident:

    loss = (1 - alpha) * CE(sigmoid(m), t_weak) + alpha * CE(sigmoid(m), 1[m > 0])

with the hardened label held fixed (no gradient through the threshold). Comparisons are shown
in random order, so the two classes are balanced and the threshold is 0 (the paper adapts it to
the class balance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    margins: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """margins: r(first) - r(second), (batch,); targets: P(first is better), (batch,)."""
    per_pair = -(targets * F.logsigmoid(margins) + (1 - targets) * F.logsigmoid(-margins))
    loss = (per_pair * weights).mean() if weights is not None else per_pair.mean()
    decided = targets != 0.5
    agree = ((margins > 0) == (targets > 0.5)) & decided
    metrics = {
        "loss": loss.item(),
        "accuracy": (agree.sum() / decided.sum().clamp(min=1)).item(),
        "margin": margins.abs().mean().item(),
    }
    return loss, metrics


def confidence_loss(
    margins: torch.Tensor, weak_targets: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Burns et al.'s auxiliary confidence loss; alpha = 0 is Bradley-Terry on the weak labels."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    weak, metrics = bradley_terry_loss(margins, weak_targets)
    hardened = (margins.detach() > 0).to(margins.dtype)
    own, _ = bradley_terry_loss(margins, hardened)
    loss = (1 - alpha) * weak + alpha * own
    return loss, {**metrics, "loss": loss.item(), "alpha": alpha}
