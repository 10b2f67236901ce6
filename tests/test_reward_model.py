"""Reward-model losses by hand, and a Bradley-Terry reward model on the tiny model learning a
separable preference."""

from __future__ import annotations

import math
import random

import pytest
import torch

from autoalign.config import TrainConfig
from autoalign.train.losses.reward import bradley_terry_loss, confidence_loss
from autoalign.train.reward_model import Comparison, load_reward_model, reward_margins, train_reward_model

LN2 = math.log(2)


def test_bradley_terry_is_ln2_at_zero_margin_for_any_target():
    for t in (0.0, 0.3, 1.0):
        loss, _ = bradley_terry_loss(torch.zeros(3), torch.full((3,), t))
        assert loss.item() == pytest.approx(LN2)


def test_bradley_terry_by_hand():
    m = torch.tensor([2.0, -1.0], requires_grad=True)
    loss, metrics = bradley_terry_loss(m, torch.tensor([1.0, 0.25]))
    s = lambda x: 1 / (1 + math.exp(-x))
    expected = (-math.log(s(2.0)) - (0.25 * math.log(s(-1.0)) + 0.75 * math.log(s(1.0)))) / 2
    assert loss.item() == pytest.approx(expected)
    assert metrics["accuracy"] == 1.0  # target 0.25 says second is better, and m < 0
    loss.backward()
    # d/dm of the per-pair loss is sigmoid(m) - t; the mean halves it.
    assert m.grad.tolist() == pytest.approx([(s(2.0) - 1) / 2, (s(-1.0) - 0.25) / 2])
    assert m.grad[0] < 0  # gradient descent raises the margin of a pair labelled "first"


def test_weights_scale_each_pair():
    m, t = torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0])
    loss, _ = bradley_terry_loss(m, t, torch.tensor([2.0, 0.0]))
    assert loss.item() == pytest.approx(2 * -torch.nn.functional.logsigmoid(torch.tensor(1.0)).item() / 2)


def test_confidence_loss_mixes_weak_labels_with_the_students_own():
    m = torch.tensor([3.0, -0.5])
    weak = torch.tensor([0.0, 1.0])  # the supervisor disagrees with the student on both
    plain, _ = bradley_terry_loss(m, weak)
    assert confidence_loss(m, weak, 0.0)[0].item() == pytest.approx(plain.item())
    own, _ = bradley_terry_loss(m, torch.tensor([1.0, 0.0]))  # the student's hardened labels
    assert confidence_loss(m, weak, 1.0)[0].item() == pytest.approx(own.item())
    assert confidence_loss(m, weak, 0.5)[0].item() == pytest.approx((plain.item() + own.item()) / 2)
    with pytest.raises(ValueError):
        confidence_loss(m, weak, 1.5)


def separable(n: int, seed: int) -> list[Comparison]:
    """The answer about the sea is better than the one about numbers, shown in random order."""
    rng = random.Random(seed)
    good = ["Write a short poem about the sea.", "the sea is blue", "waves of the sea", "a poem about the sea"]
    bad = ["0 1 2 3 4 5", "def add(a, b)", "{ } [ ] ( )", "6 7 8 9 + *"]
    out = []
    for _ in range(n):
        prompt = [{"role": "user", "content": "Give three tips for staying focused."}]
        g, b = rng.choice(good), rng.choice(bad)
        out.append(Comparison(prompt, g, b, 1.0) if rng.random() < 0.5 else Comparison(prompt, b, g, 0.0))
    return out


def test_reward_model_learns_a_separable_preference(tiny_model_dir):
    cfg = TrainConfig(learning_rate=3e-3, epochs=3, batch_size=4, grad_accum=1, warmup_ratio=0, max_length=64)
    test = separable(24, seed=1)
    model, tokenizer = load_reward_model(tiny_model_dir, seed=0)
    right = lambda margins: sum((m > 0) == (c.target > 0.5) for m, c in zip(margins, test)) / len(test)
    before = right(reward_margins(model, tokenizer, test, cfg))
    trained, history = train_reward_model(model, tokenizer, separable(32, seed=0), cfg, seed=0)
    after = right(reward_margins(trained, tokenizer, test, cfg))
    assert after >= 0.9 and after > before
    assert history[-1]["loss"] < history[0]["loss"] < 1.0
    # Swapping the two answers negates the margin: the reward is a score of each answer alone.
    swapped = [Comparison(c.prompt, c.second, c.first) for c in test[:4]]
    assert reward_margins(trained, tokenizer, swapped, cfg) == pytest.approx(
        [-m for m in reward_margins(trained, tokenizer, test[:4], cfg)], abs=1e-5
    )


def test_the_reward_model_stage_scores_again_when_a_scored_answer_changes(tiny_model_dir, tmp_path):
    """An id names a prompt, not its answers: new answers under the same id must not reuse old margins."""
    from autoalign.config import ModelConfig
    from autoalign.runtime.pool import ModelPool
    from autoalign.stages.common import StageContext
    from autoalign.stages.reward_model import reward_model_stage
    from autoalign.store import RunStore

    cfg = TrainConfig(learning_rate=3e-3, epochs=1, batch_size=4, grad_accum=1, warmup_ratio=0, max_length=64)
    at = StageContext(RunStore(tmp_path / "run"), 1, ModelPool(ModelConfig()), seed=0)
    train, a = separable(8, seed=0), separable(1, seed=1)[0]
    first = reward_model_stage(at, "rm", str(tiny_model_dir), train, {"x": a}, cfg)
    again = reward_model_stage(at, "rm", str(tiny_model_dir), train, {"x": a}, cfg)
    changed = reward_model_stage(
        at, "rm", str(tiny_model_dir), train, {"x": Comparison(a.prompt, a.second, a.first)}, cfg
    )
    assert again == first
    assert changed["x"] == pytest.approx(-first["x"], abs=1e-5)  # scored anew: the answers swapped places
