"""Hand-checked numerics of the DPO family, the reference-free, unpaired and ranking losses."""

import math

import pytest
import torch

from autoalign.config import DPOConfig
from autoalign.registry import PREFERENCE_LOSSES
from autoalign.train.losses import SequenceScores, chosen_nll_weight, loss_kind, preference_loss
from autoalign.train.losses.dpo import dpo_sigmoid_loss, ipo_loss, robust_dpo_loss
from autoalign.train.losses.kto import kto_loss, kto_reference_point
from autoalign.train.losses.ranking import pro_loss, rrhf_loss
from autoalign.train.losses.reference_free import log1mexp, orpo_odds_ratio_loss, simpo_loss, slic_hinge_loss

LN2 = math.log(2)
sig = lambda x: 1 / (1 + math.exp(-x))
t = lambda *v: torch.tensor(v, dtype=torch.float)


# --- conservative and robust DPO ------------------------------------------------------------


@pytest.mark.parametrize("e", [0.0, 0.1, 0.3])
def test_cdpo_and_robust_are_ln2_at_the_reference_whatever_the_smoothing(e):
    pol, ref = t(-12.0, -4.0), t(-11.0, -9.0)
    cdpo, _ = dpo_sigmoid_loss(pol, ref, pol, ref, beta=0.1, label_smoothing=e)
    robust, _ = robust_dpo_loss(pol, ref, pol, ref, beta=0.1, label_smoothing=e)
    assert cdpo.item() == pytest.approx(LN2) and robust.item() == pytest.approx(LN2)


def test_cdpo_hand_computed_and_its_gradient_turns_back_past_one_minus_e():
    # beta 0.5, chosen up 2 nats, rejected down 1: margin 1.5; e = 0.1
    zero = t(-10.0)
    loss, _ = dpo_sigmoid_loss(t(-8.0), t(-11.0), zero, zero, beta=0.5, label_smoothing=0.1)
    expected = -(0.9 * math.log(sig(1.5)) + 0.1 * math.log(sig(-1.5)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # d loss / d margin = sigmoid(m) - (1 - e): pushes up below sigmoid(m) = 0.9, back down above it.
    for margin, sign in ((0.0, -1), (10.0, 1)):
        chosen = torch.tensor([margin / 0.5 - 10.0], requires_grad=True)
        dpo_sigmoid_loss(chosen, zero, zero, zero, beta=0.5, label_smoothing=0.1)[0].backward()
        assert math.copysign(1, chosen.grad.item()) == sign
        assert chosen.grad.item() == pytest.approx(0.5 * (sig(margin) - 0.9), rel=1e-5)


def test_robust_dpo_is_unbiased_under_label_flips():
    """Flipping each label with probability e, the expected robust loss is the clean DPO loss."""
    e, beta = 0.2, 0.5
    chosen, rejected, zero = t(-8.0, -3.0), t(-11.0, -4.0), t(0.0, 0.0)
    clean, _ = dpo_sigmoid_loss(chosen, rejected, zero, zero, beta)
    kept, _ = robust_dpo_loss(chosen, rejected, zero, zero, beta, e)
    flipped, _ = robust_dpo_loss(rejected, chosen, zero, zero, beta, e)
    assert ((1 - e) * kept + e * flipped).item() == pytest.approx(clean.item(), rel=1e-6)
    plain, _ = robust_dpo_loss(chosen, rejected, zero, zero, beta, 0.0)
    assert plain.item() == pytest.approx(clean.item())


# --- IPO ------------------------------------------------------------------------------------


def test_ipo_regresses_the_per_token_margin_to_one_over_two_beta():
    # chosen +2 nats over 4 tokens (0.5 per token), rejected -1 over 2 (-0.5): h_avg = 1.0
    args = (t(-8.0), t(-11.0), t(-10.0), t(-10.0), t(4.0), t(2.0))
    assert ipo_loss(*args, beta=0.5)[0].item() == pytest.approx(0.0, abs=1e-7)  # target 1
    assert ipo_loss(*args, beta=0.25)[0].item() == pytest.approx(1.0)  # target 2: (1 - 2)^2
    same = (t(-5.0), t(-7.0), t(-5.0), t(-7.0), t(3.0), t(3.0))
    assert ipo_loss(*same, beta=0.1)[0].item() == pytest.approx(1 / (4 * 0.1**2))
    # Twice the tokens for the same log-ratios: half the per-token margin.
    longer = (t(-8.0), t(-11.0), t(-10.0), t(-10.0), t(8.0), t(4.0))
    assert ipo_loss(*longer, beta=0.5)[0].item() == pytest.approx((0.5 - 1.0) ** 2)


def test_ipo_gradient_raises_chosen_below_the_target_and_lowers_it_above():
    for beta, sign in ((0.25, -1), (1.0, 1)):  # targets 2 and 0.5 against h_avg = 1
        chosen = torch.tensor([-8.0], requires_grad=True)
        ipo_loss(chosen, t(-11.0), t(-10.0), t(-10.0), t(4.0), t(2.0), beta)[0].backward()
        assert math.copysign(1, chosen.grad.item()) == sign


# --- reference-free pairwise ----------------------------------------------------------------


def test_slic_hinge_by_hand():
    # beta 0.5 (margin delta 2 nats): a 1-nat lead costs 0.5, a 2-nat lead nothing.
    assert slic_hinge_loss(t(-5.0), t(-5.0), 0.5)[0].item() == pytest.approx(1.0)
    assert slic_hinge_loss(t(-4.0), t(-5.0), 0.5)[0].item() == pytest.approx(0.5)
    chosen = torch.tensor([-4.0, -3.0], requires_grad=True)
    slic_hinge_loss(chosen, t(-5.0, -5.0), 0.5)[0].backward()
    assert chosen.grad.tolist() == pytest.approx([-0.25, 0.0])  # -beta / batch inside the margin, 0 past it


def test_simpo_is_length_normalised_with_a_target_margin():
    assert simpo_loss(t(-1.0), t(-1.0), beta=2.0, gamma=0.0)[0].item() == pytest.approx(LN2)
    assert simpo_loss(t(-1.0), t(-1.0), beta=2.0, gamma=0.5)[0].item() == pytest.approx(-math.log(sig(-0.5)))
    # Through the protocol: -4 nats over 4 tokens against -4 over 2: means -1 and -2.
    loss_fn = preference_loss("simpo", beta=2.0, simpo_gamma=0.5)
    assert loss_fn.reference_free
    loss, _ = loss_fn(SequenceScores(t(-4.0), t(4.0)), SequenceScores(t(-4.0), t(2.0)), None)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.5)), rel=1e-6)  # -log sigmoid(2 * 1 - 0.5)


def test_orpo_odds_ratio_by_hand():
    # P(chosen) = 0.5 (odds 1), P(rejected) = 0.2 (odds 1/4): log odds ratio ln 4.
    loss, metrics = orpo_odds_ratio_loss(t(math.log(0.5)), t(math.log(0.2)), beta=0.1)
    assert metrics["log_odds_ratio"] == pytest.approx(math.log(4), rel=1e-5)
    assert loss.item() == pytest.approx(0.1 * math.log(1.25), rel=1e-5)
    assert orpo_odds_ratio_loss(t(-1.0), t(-1.0), beta=0.1)[0].item() == pytest.approx(0.1 * LN2)
    chosen = torch.tensor([math.log(0.5)], requires_grad=True)
    orpo_odds_ratio_loss(chosen, t(math.log(0.2)), beta=0.1)[0].backward()
    assert chosen.grad.item() < 0


def test_log1mexp_is_accurate_near_zero_and_far_below():
    assert log1mexp(t(-1e-5)).item() == pytest.approx(math.log(-math.expm1(-1e-5)), rel=1e-5)
    assert log1mexp(t(-40.0)).item() == pytest.approx(-math.exp(-40.0), rel=1e-4)
    assert torch.isfinite(log1mexp(t(0.0)))  # an empty answer's mean log-prob is 0


# --- KTO ------------------------------------------------------------------------------------


def test_kto_at_the_reference_is_half_of_each_weight():
    pol = t(-5.0, -7.0)
    z0 = kto_reference_point(t(-3.0, -4.0), t(-3.0, -4.0))
    loss, metrics = kto_loss(pol, pol, torch.tensor([True, False]), z0, beta=0.1, undesirable_weight=2.0)
    assert loss.item() == pytest.approx((0.5 * 1.0 + 0.5 * 2.0) / 2)
    assert metrics["kl"] == 0.0


def test_kto_reference_point_is_a_clamped_detached_mean():
    pol = torch.tensor([-2.0, -6.0], requires_grad=True)
    z0 = kto_reference_point(pol, t(-3.0, -4.0))  # ratios +1 and -2: mean -0.5 -> 0
    assert z0.item() == 0.0
    z0 = kto_reference_point(pol, t(-4.0, -7.0))  # ratios +2 and +1: 1.5
    assert z0.item() == pytest.approx(1.5) and not z0.requires_grad


def test_kto_hand_computed_and_gradient_signs():
    policy = torch.tensor([-4.0, -6.0], requires_grad=True)
    reference = t(-5.0, -5.0)  # ratios: desirable +1, undesirable -1
    z0 = torch.tensor(0.5)
    loss, metrics = kto_loss(policy, reference, torch.tensor([True, False]), z0, beta=1.0)
    expected = ((1 - sig(1.0 - 0.5)) + (1 - sig(0.5 - (-1.0)))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["rewards/accuracy"] == 1.0
    loss.backward()
    assert policy.grad[0] < 0 < policy.grad[1]  # raise the desirable answer, lower the undesirable one


def test_kto_takes_unbalanced_labels():
    """Unpaired data: three desirable answers and one undesirable, no pairing between them."""
    policy, reference = t(-4.0, -4.0, -4.0, -6.0), t(-5.0, -5.0, -5.0, -5.0)
    desirable = torch.tensor([True, True, True, False])
    loss, _ = kto_loss(policy, reference, desirable, torch.tensor(0.0), beta=1.0, undesirable_weight=3.0)
    expected = (3 * (1 - sig(1.0)) + 3.0 * (1 - sig(1.0))) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# --- ranking --------------------------------------------------------------------------------

SCORES = t(-1.0, -0.5, -2.0, -3.0)  # mean log-prob per token of 4 candidates, judged best first
REWARDS = t(4.0, 3.0, 2.0, 1.0)


def test_rrhf_on_four_candidates_by_hand():
    mask = torch.ones(1, 4, dtype=torch.bool)
    # Only the 2nd-best candidate outscores a better one (the best): gap 0.5; all else is in order.
    loss, metrics = rrhf_loss(SCORES[None], REWARDS[None], mask)
    assert loss.item() == pytest.approx(0.5)
    assert metrics["rewards/accuracy"] == pytest.approx(5 / 6)
    assert metrics["rewards/margins"] == pytest.approx(-1.0 - -3.0)
    tied = rrhf_loss(SCORES[None], t(4.0, 4.0, 2.0, 1.0)[None], mask)[0]
    assert tied.item() == 0.0  # equal scores: the two best are not ordered against each other
    scores = SCORES[None].clone().requires_grad_()
    rrhf_loss(scores, REWARDS[None], mask)[0].backward()
    assert scores.grad.tolist() == [[-1.0, 1.0, 0.0, 0.0]]


def test_rrhf_and_pro_ignore_masked_candidates():
    padded_scores, padded_rewards = torch.cat([SCORES, t(5.0)])[None], torch.cat([REWARDS, t(0.0)])[None]
    mask = torch.tensor([[True, True, True, True, False]])
    full = torch.ones(1, 4, dtype=torch.bool)
    for loss_fn in (rrhf_loss, pro_loss):
        padded = loss_fn(padded_scores, padded_rewards, mask)[0].item()
        assert padded == pytest.approx(loss_fn(SCORES[None], REWARDS[None], full)[0].item())


def test_pro_on_four_candidates_by_hand():
    lse = lambda *v: math.log(sum(math.exp(x) for x in v))
    # k = best (r 4): gaps 1, 2, 3 to the others, own scale 3 -> own -1 * 3; others p_i * gap
    l0 = lse(-3.0, -0.5 * 1, -2.0 * 2, -3.0 * 3) - (-3.0)
    l1 = lse(-0.5 * 2, -2.0 * 1, -3.0 * 2) - (-0.5 * 2)  # k = 2nd (r 3): gaps 1, 2
    l2 = lse(-2.0 * 1, -3.0 * 1) - (-2.0)  # k = 3rd (r 2): gap 1 to the last
    loss, _ = pro_loss(SCORES[None], REWARDS[None], torch.ones(1, 4, dtype=torch.bool))
    assert loss.item() == pytest.approx(l0 + l1 + l2, rel=1e-6)


def test_pro_with_two_candidates_is_the_pairwise_logistic_loss():
    scores, rewards = t(-1.2, -0.7)[None], t(1.0, 0.0)[None]
    loss, _ = pro_loss(scores, rewards, torch.ones(1, 2, dtype=torch.bool))
    assert loss.item() == pytest.approx(-math.log(sig(-1.2 - -0.7)), rel=1e-6)
    scores.requires_grad_()
    pro_loss(scores, rewards, torch.ones(1, 2, dtype=torch.bool))[0].backward()
    assert scores.grad[0, 0] < 0 < scores.grad[0, 1]


# --- the registry ---------------------------------------------------------------------------


def test_every_registered_loss_builds_from_the_dpo_section():
    kinds = {}
    for name in PREFERENCE_LOSSES:
        cfg = DPOConfig(loss=name, label_smoothing=0.1)
        loss_fn = preference_loss(cfg.loss, **cfg.model_dump())
        kinds[name] = (loss_kind(loss_fn), loss_fn.reference_free)
    assert kinds == {
        "dpo": ("pairs", False), "sigmoid": ("pairs", False), "cdpo": ("pairs", False), "robust": ("pairs", False),
        "ipo": ("pairs", False), "slic": ("pairs", True), "simpo": ("pairs", True), "orpo": ("pairs", True),
        "kto": ("unpaired", False), "rrhf": ("ranking", True), "pro": ("ranking", True), "coh": ("hindsight", True),
    }  # fmt: skip


def test_the_sft_term_defaults_to_each_papers_and_an_explicit_weight_wins():
    defaults = {
        name: chosen_nll_weight(name, DPOConfig(loss=name).sft_weight)
        for name in ("dpo", "orpo", "rrhf", "slic", "pro", "kto")
    }
    assert defaults == {"dpo": 0.0, "orpo": 1.0, "rrhf": 1.0, "slic": 1.0, "pro": 0.1, "kto": 0.0}
    assert chosen_nll_weight("orpo", DPOConfig(loss="orpo", sft_weight=0.0).sft_weight) == 0.0
    assert DPOConfig().key() == {}  # unset settings stay out of stage keys
