"""A toy reference-free preference loss for the registry test: -log sigmoid(beta * (log pi(y_w|x)
- log pi(y_l|x))), i.e. DPO with the reference term dropped."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F


@dataclass(frozen=True)
class ToyMarginLoss:
    beta: float
    reference_free = True

    def __call__(self, chosen, rejected, reference, weights=None):
        assert reference is None  # a reference-free loss is never given one
        per_pair = -F.logsigmoid(self.beta * (chosen.logps - rejected.logps))
        loss = (per_pair * weights).mean() if weights is not None else per_pair.mean()
        margins = chosen.logps - rejected.logps
        return loss, {
            "loss": loss.item(),
            "rewards/accuracy": (margins > 0).float().mean().item(),
            "rewards/margins": margins.mean().item(),
        }
