"""Our losses equal TRL's on the same log-probabilities, where TRL implements the same loss
(TRL is a test-only dependency: autoalign never imports it).

TRL keeps most losses inside its trainers' `_compute_loss`, which runs the model; those are
called here on a stand-in `self` and a stand-in model that returns the per-token log-probs we
chose, so both sides see exactly the same numbers. RRHF, PRO and Chain of Hindsight are in no
maintained library; their tests are by hand (test_preference_losses.py)."""

from __future__ import annotations

import os
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
trl = pytest.importorskip("trl")
from trl import DPOTrainer, KTOTrainer  # noqa: E402
from trl.experimental.cpo import CPOTrainer  # noqa: E402
from trl.experimental.orpo import ORPOTrainer  # noqa: E402

from autoalign.train.losses import SequenceScores, preference_loss  # noqa: E402
from autoalign.train.losses.kto import kto_reference_point  # noqa: E402

BATCH, WIDTH = 3, 9


def _accelerator() -> SimpleNamespace:
    return SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x)


def _trainer_self(**settings) -> SimpleNamespace:
    return SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=_accelerator(), aux_loss_enabled=False,
        _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1, **settings,
    )  # fmt: skip


class FixedLogprobs:
    """A stand-in model: for each input_ids tensor it was given, the per-token log-probs we chose
    (zero where a position carries no loss, as TRL's fused head returns them)."""

    def __init__(self, by_inputs: list[tuple[torch.Tensor, torch.Tensor]]):
        self.by_inputs = by_inputs

    def __call__(self, input_ids, **_):
        logps = next(lp for ids, lp in self.by_inputs if ids is input_ids)
        zeros = torch.zeros_like(logps)
        return SimpleNamespace(log_probs=logps, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _answers(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, completion_mask, per-token log-probs of positions 1..WIDTH-1): answers of
    different lengths after prompts of different lengths."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(rows, WIDTH, dtype=torch.long)
    for r in range(rows):
        start = 2 + r % 3
        mask[r, start : start + 2 + (r * 5 + seed) % (WIDTH - start - 1)] = 1
    logps = -torch.rand(rows, WIDTH - 1, generator=g) * 3 * mask[:, 1:]
    return torch.randint(5, 100, (rows, WIDTH), generator=g), mask, logps


def _scores(mask: torch.Tensor, logps: torch.Tensor) -> SequenceScores:
    return SequenceScores(logps.sum(-1), mask[:, 1:].sum(-1))


@pytest.mark.parametrize("ours, theirs", [("dpo", "sigmoid"), ("robust", "robust"), ("ipo", "ipo")])
def test_dpo_family_equals_trls_dpo_trainer(ours, theirs):
    ids, mask, logps = _answers(2 * BATCH, seed=1)
    ref = -torch.rand(2 * BATCH, generator=torch.Generator().manual_seed(2)) * 20
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": mask,
              "ref_chosen_logps": ref[:BATCH], "ref_rejected_logps": ref[BATCH:]}  # fmt: skip
    fake = _trainer_self(
        ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[theirs],
        loss_weights=[1.0], beta=0.3, label_smoothing=0.2, use_weighting=False,
    )  # fmt: skip
    trl_loss = DPOTrainer._compute_loss(fake, FixedLogprobs([(ids, logps)]), inputs, return_outputs=False)
    scores = _scores(mask, logps)
    chosen = SequenceScores(scores.logps[:BATCH], scores.tokens[:BATCH])
    rejected = SequenceScores(scores.logps[BATCH:], scores.tokens[BATCH:])
    loss, _ = preference_loss(ours, beta=0.3, label_smoothing=0.2)(chosen, rejected, (ref[:BATCH], ref[BATCH:]))
    assert loss.item() == pytest.approx(trl_loss.item(), rel=1e-6)


@pytest.mark.parametrize("ours, theirs", [("slic", "hinge"), ("simpo", "simpo"), ("cdpo", "sigmoid")])
def test_reference_free_losses_equal_trls_cpo_trainer(ours, theirs):
    """TRL's CPO losses are reference-free; cDPO with a zero reference is its smoothed sigmoid."""
    g = torch.Generator().manual_seed(3)
    chosen = SequenceScores(-torch.rand(BATCH, generator=g) * 30, torch.tensor([5, 12, 30]))
    rejected = SequenceScores(-torch.rand(BATCH, generator=g) * 30, torch.tensor([9, 4, 20]))
    mean = lambda s: -s.nll  # CPO's simpo reads mean log-probs per token, the others sums
    given = (mean(chosen), mean(rejected)) if theirs == "simpo" else (chosen.logps, rejected.logps)
    smoothing = 0.15 if ours == "cdpo" else 0.0  # TRL also smooths its SimPO; the paper's has no smoothing
    fake = SimpleNamespace(alpha=0.0, beta=2.0, loss_type=theirs, simpo_gamma=0.7, label_smoothing=smoothing,
                           accelerator=_accelerator())  # fmt: skip
    trl_losses = CPOTrainer.cpo_loss(fake, *given)[0]
    zero = torch.zeros(BATCH)
    reference = (zero, zero) if ours == "cdpo" else None
    loss_fn = preference_loss(ours, beta=2.0, simpo_gamma=0.7, label_smoothing=smoothing)
    loss, _ = loss_fn(chosen, rejected, reference)
    assert loss.item() == pytest.approx(trl_losses.mean().item(), rel=1e-6)


def test_orpo_odds_ratio_equals_trls():
    g = torch.Generator().manual_seed(4)
    chosen = SequenceScores(-torch.rand(BATCH, generator=g) * 30, torch.tensor([5, 12, 30]))
    rejected = SequenceScores(-torch.rand(BATCH, generator=g) * 30, torch.tensor([9, 4, 20]))
    fake = SimpleNamespace(beta=0.25, accelerator=_accelerator())
    trl_terms = ORPOTrainer.odds_ratio_loss(fake, -chosen.nll, -rejected.nll)[0]  # beta * log sigmoid(log odds)
    loss, _ = preference_loss("orpo", beta=0.25)(chosen, rejected, None)
    assert loss.item() == pytest.approx(-trl_terms.mean().item(), rel=1e-6)


@pytest.mark.parametrize("kl_shift", [0.0, 4.0])
def test_kto_equals_trls_kto_trainer_with_its_kl_reference_point(kl_shift):
    """Unbalanced labels (4 desirable, 2 not); kl_shift 4 makes the KL estimate positive, so the
    reference point z0 is in play (0 leaves it clamped at 0)."""
    labels = torch.tensor([True, False, True, True, False, True])
    ids, mask, logps = _answers(len(labels), seed=5)
    kl_ids, kl_mask, kl_logps = _answers(len(labels), seed=6)
    g = torch.Generator().manual_seed(7)
    ref, ref_kl = -torch.rand(len(labels), generator=g) * 20, kl_logps.sum(-1) - kl_shift
    inputs = {"label": labels, "input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": mask,
              "KL_input_ids": kl_ids, "KL_attention_mask": torch.ones_like(kl_ids), "KL_completion_mask": kl_mask,
              "ref_logps": ref, "ref_KL_logps": ref_kl}  # fmt: skip
    fake = _trainer_self(calculate_KL=True, precompute_ref_logps=True, loss_type="kto", beta=0.2,
                         desirable_weight=1.0, undesirable_weight=1.5)  # fmt: skip
    fake._compute_kl_logps = lambda model, batch: KTOTrainer._compute_kl_logps(fake, model, batch)
    model = FixedLogprobs([(ids, logps), (kl_ids, kl_logps)])
    trl_loss = KTOTrainer._compute_loss(fake, model, inputs, return_outputs=False)
    z0 = kto_reference_point(kl_logps.sum(-1), ref_kl)
    assert (z0.item() > 0) == (kl_shift > 0)
    loss_fn = preference_loss("kto", beta=0.2, desirable_weight=1.0, undesirable_weight=1.5)
    loss, _ = loss_fn(logps.sum(-1), ref, labels, z0)
    assert loss.item() == pytest.approx(trl_loss.item(), rel=1e-6)
