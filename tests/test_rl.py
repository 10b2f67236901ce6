"""Online RL: advantages and the clipped loss by hand, the trainer on the tiny model, and the
`loop: rl` rounds end to end, resumed after a crash mid-training exactly as uninterrupted."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from autoalign.config import ConfigError, RLConfig
from autoalign.data import load_ift
from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate
from autoalign.models.loading import load_model
from autoalign.stages import rl as rl_stage_module
from autoalign.stages.rl import RolloutGroup, rollouts_with_advantages
from autoalign.train.data import encode_chat
from autoalign.train.losses.policy_gradient import clipped_policy_loss, group_advantages
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.rl import Rollout, encode_rollouts, token_logprobs, train_rl
from autoalign.types import Candidate
from test_loop_tiny import make_verifier, tiny_config
from test_training import Crash, CrashAfterSaves, Resuming, _assert_same, _weights

FIX = Path(__file__).parent / "fixtures"


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.5, 0.5]])
    std = math.sqrt((0.25 + 0.25 + 0 + 0) / 3)  # unbiased, as DeepSeekMath and TRL
    grpo = group_advantages(rewards, "grpo")[0].tolist()
    assert grpo == pytest.approx([0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.0, 0.0])
    assert group_advantages(rewards, "grpo", scale=False)[0].tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0])
    # RLOO: each reward minus the mean of the other three
    assert group_advantages(rewards, "rloo")[0].tolist() == pytest.approx([1 - 1 / 3, 0 - 2 / 3, 0.5 - 0.5, 0.5 - 0.5])
    assert group_advantages(torch.tensor([[3.0, 3.0]]), "grpo")[0].tolist() == [0.0, 0.0]


def test_clipped_policy_loss_by_hand():
    mask = torch.tensor([[True, True, False], [True, True, True]])
    old = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5]])
    advantages = torch.tensor([1.0, -0.5])
    # On-policy (ratio 1), no KL: loss = -mean over answers of A.
    loss, metrics = clipped_policy_loss(old.clone(), old, None, mask, advantages, clip=0.2, kl_coef=0.0)
    assert loss.item() == pytest.approx(-(1.0 - 0.5) / 2)
    assert metrics["clip_fraction"] == 0.0 and metrics["ratio"] == pytest.approx(1.0)
    # Ratio 1.5 on answer 0's first token: clipped to 1.2 for A > 0, so that token gets no gradient.
    logps = old.clone()
    logps[0, 0] += math.log(1.5)
    logps.requires_grad_()
    loss, metrics = clipped_policy_loss(logps, old, None, mask, advantages, clip=0.2, kl_coef=0.0)
    assert loss.item() == pytest.approx(-((1.2 + 1.0) / 2 * 1.0 + -0.5) / 2)
    assert metrics["clip_fraction"] == pytest.approx(1 / 5)
    loss.backward()
    assert logps.grad[0, 0] == 0.0 and logps.grad[0, 1] < 0 < logps.grad[1, 0]  # raise A > 0, lower A < 0


def test_the_kl_term_is_the_k3_estimate():
    mask = torch.ones(1, 2, dtype=torch.bool)
    logps, ref = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-1.5, -1.0]])
    loss, metrics = clipped_policy_loss(logps, logps, ref, mask, torch.zeros(1), clip=0.2, kl_coef=0.1)
    k3 = math.exp(-0.5) + 0.5 - 1  # pi_ref / pi - log(pi_ref / pi) - 1 on the first token; 0 on the second
    assert metrics["kl"] == pytest.approx(k3 / 2) and loss.item() == pytest.approx(0.1 * k3 / 2)


def test_groups_without_a_signal_are_dropped_and_counted():
    c = lambda text, reason="stop": Candidate(text, 3, reason)
    prompt = [{"role": "user", "content": "q"}]
    groups = [
        RolloutGroup("a", prompt, [c("x"), c("y", "length")], [1.0, 0.0]),
        RolloutGroup("b", prompt, [c("x"), c("y")], [0.5, 0.5]),
        RolloutGroup("c", prompt, [c("x"), c("", "error")], [1.0, 0.0]),
        RolloutGroup("d", prompt, [c("x"), c("y"), c("z")], [None, 1.0, 0.0]),
    ]
    rollouts, dropped = rollouts_with_advantages(groups, RLConfig(algorithm="rloo"))
    assert dropped == {"fewer_than_two_rewards": 1, "same_reward": 1}
    assert [(r.answer, r.finished, r.advantage) for r in rollouts] == [
        ("x", True, 1.0), ("y", False, -1.0), ("y", True, 1.0), ("z", True, -1.0),
    ]  # fmt: skip


def test_a_cut_off_answer_is_trained_without_an_end_of_turn(tiny_loaded):
    prompt = [{"role": "user", "content": "Hi"}]
    finished = encode_chat(tiny_loaded.tokenizer, prompt, "Hello there", 128)
    cut = encode_chat(tiny_loaded.tokenizer, prompt, "Hello there", 128, finished=False)
    assert finished.input_ids[: len(cut.input_ids)] == cut.input_ids and len(finished.input_ids) > len(cut.input_ids)


def _rollouts(n: int = 6) -> list[Rollout]:
    """Answers to the fixture prompts: the even ones rewarded, the odd ones not."""
    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:n]
    return [
        Rollout(c[:-1], c[-1]["content"], True, float(i % 2 == 0), 1.0 if i % 2 == 0 else -1.0)
        for i, c in enumerate(conversations)
    ]


def _answer_logps(loaded, rollouts) -> list[float]:
    encoded = encode_rollouts(loaded.tokenizer, rollouts, 128)
    per_token, _ = token_logprobs(loaded.model, encoded, loaded.tokenizer.pad_token_id, 4, RLConfig())
    return [sum(v) / len(v) for v in per_token]


def test_rl_raises_rewarded_answers_and_starts_on_policy(tiny_model_dir):
    rollouts = _rollouts()
    start = load_model(tiny_model_dir)
    before = _answer_logps(start, rollouts)
    reference = token_logprobs(start.model, encode_rollouts(start.tokenizer, rollouts, 128), 0, 4, RLConfig())[0]
    cfg = RLConfig(learning_rate=3e-3, epochs=4, batch_size=2, grad_accum=1, max_length=128, warmup_ratio=0)
    model, history, stats = train_rl(load_model(tiny_model_dir), rollouts, cfg, 1, reference)
    assert history[0]["ratio"] == pytest.approx(1.0, abs=1e-5) and history[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert history[-1]["kl"] > 0 and {"reward", "entropy", "length", "clip_fraction"} <= set(history[0])
    assert history[0]["entropy"] > 0 and stats["trained_answers"] == 6
    start.model.load_state_dict(model.state_dict())
    change = [a - b for a, b in zip(_answer_logps(start, rollouts), before)]
    assert min(change[0::2]) > max(change[1::2])  # rewarded answers gain on the others


def test_rl_resumed_after_a_crash_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    rollouts = _rollouts()
    cfg = RLConfig(learning_rate=1e-3, epochs=2, batch_size=2, grad_accum=1, max_length=128)
    model, straight_history, _ = train_rl(load_model(tiny_model_dir), rollouts, cfg, 1, None)
    straight = _weights(model)
    old, state_dir = tmp_path / "old.json", tmp_path / "train_state"
    with pytest.raises(Crash):
        train_rl(load_model(tiny_model_dir), rollouts, cfg, 1, None, old, CrashAfterSaves(state_dir, 2))
    resuming = Resuming(state_dir)
    model, resumed_history, _ = train_rl(load_model(tiny_model_dir), rollouts, cfg, 1, None, old, resuming)
    assert resuming.resumed_at == 2 and resumed_history == straight_history
    _assert_same(_weights(model), straight)


def _rl_config(model_dir: Path, runs: Path):
    return tiny_config(
        model_dir, runs, "loop=rl", "rl.reward=judge", "rl.batch_size=4", "rl.grad_accum=1",
        "rl.learning_rate=1e-3", "rl.max_length=128", "rl.checkpoint_minutes=0",
    )  # fmt: skip


def test_rl_loop_end_to_end(tiny_model_dir, tmp_path):
    cfg = _rl_config(tiny_model_dir, tmp_path)
    result = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    for t in (1, 2):
        it = tmp_path / f"tiny/iter_{t}"
        metrics = read_json(it / "rl/metrics.json")
        assert metrics["prompts"] == 6 and metrics["answers"] == 24 and metrics["algorithm"] == "grpo"
        assert metrics["groups_used"] + sum(metrics["dropped"].values()) == 6
        history = read_jsonl(it / "rl/data.jsonl")
        assert len(history) == metrics["steps"] and all(0 <= h["reward"] <= 5 for h in history)
        assert (it / "rl/model/model.safetensors").exists()
        assert read_json(it / "eval/metrics.json")["new"] == f"M{t + 1}"
    assert result["final_model"].endswith("iter_2/rl/model")
    with pytest.raises(ConfigError, match="sample.n must be >= 2"):
        iterate.run(_rl_config(tiny_model_dir, tmp_path / "x").replaced(sample={"n": 1}), log=lambda m: None)


def test_rl_loop_killed_mid_training_resumes_to_the_same_model(tiny_model_dir, tmp_path, monkeypatch):
    straight_cfg = _rl_config(tiny_model_dir, tmp_path / "straight")
    iterate.run(straight_cfg, log=lambda m: None, make_judge=make_verifier)
    straight = load_model(tmp_path / "straight/tiny/iter_2/rl/model").model.state_dict()

    class KilledInRound2(TrainCheckpointer):
        """Checkpoints every step of the second round and dies after its first save."""

        def __init__(self, path, minutes):
            crash = "iter_2" in str(path)
            super().__init__(path, 1e-9 if crash else minutes)
            self.crash = crash

        def save(self, *args, **kwargs):
            super().save(*args, **kwargs)
            if self.crash:
                raise Crash

    cfg = _rl_config(tiny_model_dir, tmp_path / "killed")
    monkeypatch.setattr(rl_stage_module, "TrainCheckpointer", KilledInRound2)
    with pytest.raises(Crash):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert list((tmp_path / "killed/tiny/iter_2/rl").glob("train_state-*"))
    monkeypatch.undo()
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    resumed = load_model(tmp_path / "killed/tiny/iter_2/rl/model").model.state_dict()
    _assert_same(resumed, straight)
    assert read_jsonl(tmp_path / "killed/tiny/iter_2/rl/data.jsonl") == read_jsonl(
        tmp_path / "straight/tiny/iter_2/rl/data.jsonl"
    )
