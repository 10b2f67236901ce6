"""Hand-checked numerics of the losses."""

import math

import pytest
import torch

from autoalign.train.losses import IGNORE_INDEX, dpo_sigmoid_loss, sequence_logprobs, sft_loss, token_logprobs


def test_dpo_loss_is_ln2_when_policy_equals_reference():
    logps = torch.tensor([-12.3, -4.0, -30.5])
    rej = torch.tensor([-11.0, -9.5, -2.0])
    loss, metrics = dpo_sigmoid_loss(logps, rej, logps.clone(), rej.clone(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert metrics["rewards/margins"] == 0.0
    assert metrics["rewards/accuracy"] == 0.0


def test_dpo_loss_hand_computed_case():
    # chosen up by 2 nats, rejected down by 1 nat, beta 0.5: margin = 0.5 * (2 - (-1)) = 1.5
    loss, metrics = dpo_sigmoid_loss(
        torch.tensor([-8.0]), torch.tensor([-11.0]), torch.tensor([-10.0]), torch.tensor([-10.0]), beta=0.5
    )
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.5)), rel=1e-6)
    assert metrics["rewards/chosen"] == pytest.approx(1.0)
    assert metrics["rewards/rejected"] == pytest.approx(-0.5)
    assert metrics["rewards/margins"] == pytest.approx(1.5)
    assert metrics["rewards/accuracy"] == 1.0


def test_dpo_pair_weights_scale_each_term():
    # Two pairs: margins 1.5 and 0 (loss ln 2). Weights 1.5 and 0.5 (mean 1).
    zero = torch.zeros(2)
    chosen, rejected = torch.tensor([1.5, 0.0]), torch.tensor([0.0, 0.0])
    loss, _ = dpo_sigmoid_loss(chosen, rejected, zero, zero, beta=1.0, weights=torch.tensor([1.5, 0.5]))
    expected = (1.5 * math.log1p(math.exp(-1.5)) + 0.5 * math.log(2)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    uniform, _ = dpo_sigmoid_loss(chosen, rejected, zero, zero, beta=1.0, weights=torch.ones(2))
    plain, _ = dpo_sigmoid_loss(chosen, rejected, zero, zero, beta=1.0)
    assert uniform.item() == plain.item()


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    chosen = torch.tensor([-5.0, -7.0], requires_grad=True)
    rejected = torch.tensor([-6.0, -3.0], requires_grad=True)
    loss, _ = dpo_sigmoid_loss(chosen, rejected, torch.tensor([-5.0, -7.0]), torch.tensor([-6.0, -3.0]), beta=0.1)
    loss.backward()
    # Gradient descent moves against the gradient: negative grad => chosen log-prob goes up.
    assert (chosen.grad < 0).all()
    assert (rejected.grad > 0).all()
    # At policy == reference every pair has weight sigmoid(0) = 0.5: d loss/d chosen = -beta * 0.5 / batch
    assert chosen.grad.tolist() == pytest.approx([-0.1 * 0.5 / 2] * 2)


def test_dpo_beta_scales_rewards_and_gradient():
    args = (torch.tensor([-4.0]), torch.tensor([-6.0]), torch.tensor([-5.0]), torch.tensor([-5.0]))
    _, small = dpo_sigmoid_loss(*args, beta=0.1)
    _, large = dpo_sigmoid_loss(*args, beta=0.2)
    assert large["rewards/margins"] == pytest.approx(2 * small["rewards/margins"])
    loss_small, _ = dpo_sigmoid_loss(*args, beta=0.1)
    loss_large, _ = dpo_sigmoid_loss(*args, beta=0.2)
    assert loss_large.item() < loss_small.item()  # a positive margin counts more with larger beta
    assert loss_small.item() == pytest.approx(math.log1p(math.exp(-0.2)), rel=1e-6)


def test_masked_prompt_tokens_contribute_nothing():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 11, requires_grad=True)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 4, 7, 2]])
    total = sequence_logprobs(logits, labels)
    # Hand: positions 2,3,4 predict tokens 4,7,2.
    lp = torch.log_softmax(logits[0], -1)
    expected = lp[2, 4] + lp[3, 7] + lp[4, 2]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.sum().backward()
    # Logits at positions 0 and 1 only predict prompt tokens (and position 5 predicts nothing).
    assert torch.count_nonzero(logits.grad[0, :2]) == 0
    assert torch.count_nonzero(logits.grad[0, 5]) == 0
    # Changing a prompt token's logits changes nothing.
    changed = logits.detach().clone()
    changed[0, 0] += 100.0
    assert sequence_logprobs(changed, labels).item() == pytest.approx(total.item(), rel=1e-6)


def test_sft_loss_is_mean_nll_over_response_tokens():
    logits = torch.zeros(2, 3, 4)  # uniform: every token has log-prob -ln 4
    labels = torch.tensor([[IGNORE_INDEX, 1, 2], [IGNORE_INDEX, IGNORE_INDEX, 3]])
    loss, metrics = sft_loss(logits, labels)
    assert loss.item() == pytest.approx(math.log(4))
    assert metrics["tokens"] == 3
    _, mask = token_logprobs(logits, labels)
    assert mask.sum().item() == 3


def test_response_window_keeps_exactly_the_logits_the_loss_uses(tiny_loaded):
    from autoalign.train.data import collate, encode_chat
    from autoalign.train.losses import response_window

    tok = tiny_loaded.tokenizer
    examples = [
        encode_chat(tok, [{"role": "user", "content": "Write a short poem about the sea, please."}], "Waves.", 256),
        encode_chat(tok, [{"role": "user", "content": "Hi"}], "Hello there, friend.", 256),
    ]
    batch = collate(examples, tok.pad_token_id, "cpu")
    labels = batch["labels"]
    window = response_window(labels)
    assert window < labels.shape[1]  # some prompt positions are skipped
    full = tiny_loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    kept = tiny_loaded.model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=window
    ).logits
    assert kept.shape[1] == window
    assert torch.allclose(sequence_logprobs(kept, labels[:, -window:]), sequence_logprobs(full, labels), atol=1e-5)
    loss_kept, _ = sft_loss(kept, labels[:, -window:])
    loss_full, _ = sft_loss(full, labels)
    assert loss_kept.item() == pytest.approx(loss_full.item(), rel=1e-5)
    assert response_window(torch.full((1, 4), IGNORE_INDEX)) == 1


def test_dpo_through_the_preference_loss_protocol_is_ln2_at_the_reference():
    from autoalign.train.losses import SequenceScores, preference_loss

    loss_fn = preference_loss("dpo", beta=0.1)
    chosen = SequenceScores(torch.tensor([-12.0, -3.5]), torch.tensor([6, 2]))
    rejected = SequenceScores(torch.tensor([-9.0, -4.0]), torch.tensor([3, 4]))
    loss, metrics = loss_fn(chosen, rejected, (chosen.logps.clone(), rejected.logps.clone()))
    assert not loss_fn.reference_free
    assert loss.item() == pytest.approx(math.log(2)) and metrics["rewards/margins"] == 0
    # Per-sequence records: mean NLL per answer token, by hand.
    assert chosen.nll.tolist() == pytest.approx([2.0, 1.75]) and rejected.nll.tolist() == pytest.approx([3.0, 1.0])


def test_sequence_scores_count_only_answer_tokens():
    from autoalign.train.losses import sequence_scores

    logits = torch.zeros(1, 4, 3)  # uniform over 3 tokens: each counted token has log-prob -ln 3
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 1, 2]])
    scores = sequence_scores(logits, labels)
    assert scores.tokens.tolist() == [2] and scores.logps.item() == pytest.approx(-2 * math.log(3))


def test_the_chosen_nll_term_adds_the_weighted_mean_nll_and_raises_the_chosen_answer():
    from autoalign.train.losses import SequenceScores, preference_loss, with_chosen_nll

    logps = torch.tensor([-12.0, -3.5], requires_grad=True)
    chosen = SequenceScores(logps, torch.tensor([6, 2]))  # NLL per token: 2.0 and 1.75
    rejected = SequenceScores(torch.tensor([-9.0, -4.0]), torch.tensor([3, 4]))
    weights = torch.tensor([1.5, 0.5])
    dpo, metrics = preference_loss("dpo", beta=0.1)(chosen, rejected, (logps.detach(), rejected.logps), weights)
    loss, metrics = with_chosen_nll(dpo, metrics, chosen, weights, sft_weight=0.5)
    # ln 2 at the reference, + 0.5 * mean(1.5 * 2.0, 0.5 * 1.75) = 0.5 * 1.9375
    assert loss.item() == pytest.approx(math.log(2) + 0.5 * 1.9375)
    assert metrics["chosen_nll"] == pytest.approx(1.9375) and metrics["loss"] == pytest.approx(loss.item())
    loss.backward()
    # d/dlogp_i: DPO's -beta/2 * w_i / 2 plus the NLL's -0.5 * w_i / (2 * tokens_i): both raise the chosen.
    expected = [-(0.1 * 0.5 * 1.5 / 2) - 0.5 * 1.5 / (2 * 6), -(0.1 * 0.5 * 0.5 / 2) - 0.5 * 0.5 / (2 * 2)]
    assert logps.grad.tolist() == pytest.approx(expected)
    assert with_chosen_nll(dpo, {"loss": 1.0}, chosen, weights, sft_weight=0.0)[0] is dpo  # off: unchanged
