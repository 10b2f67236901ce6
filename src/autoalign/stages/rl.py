"""The RL update as a stage: M_t's sampled answers and their rewards -> advantages per prompt
group -> M_{t+1} (train/rl.py), with the reference's per-token log-probabilities computed first
(the model RL started from; skipped when rl.kl_coef is 0). Checkpoint in iter_t/rl/model; an
interrupted stage resumes from its last mid-training checkpoint and its cached log-probs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from autoalign.config import RLConfig
from autoalign.models.loading import load_model
from autoalign.pairs import NoPairsError
from autoalign.runtime.pool import ModelRef, save_checkpoint
from autoalign.stages.common import StageContext
from autoalign.train.losses.policy_gradient import group_advantages
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.rl import Rollout, cached, encode_rollouts, token_logprobs, train_rl
from autoalign.types import Candidate, Message


@dataclass(frozen=True)
class RolloutGroup:
    """A prompt as the model was asked it, its sampled answers, and each answer's reward (None:
    the reward could not be computed, e.g. a judge verdict that did not parse)."""

    prompt_id: str
    prompt: list[Message]
    answers: list[Candidate]
    rewards: list[float | None]


def rollouts_with_advantages(groups: list[RolloutGroup], cfg: RLConfig) -> tuple[list[Rollout], dict]:
    """Advantages within each prompt's group of scored answers. Answers without a reward or that
    failed are left out; a group with fewer than two scored answers, or whose answers all got the
    same reward, teaches nothing (advantage 0) and is dropped, counted."""
    rollouts, dropped = [], {"fewer_than_two_rewards": 0, "same_reward": 0}
    for g in groups:
        scored = [(c, r) for c, r in zip(g.answers, g.rewards) if r is not None and c.finish_reason != "error"]
        if len(scored) < 2:
            dropped["fewer_than_two_rewards"] += 1
            continue
        rewards = torch.tensor([[r for _, r in scored]], dtype=torch.float64, device="cpu")
        if rewards.max() == rewards.min():
            dropped["same_reward"] += 1
            continue
        advantages = group_advantages(rewards, cfg.algorithm, cfg.scale_rewards)[0].tolist()
        for (c, r), a in zip(scored, advantages):
            rollouts.append(Rollout(g.prompt, c.text, c.finish_reason == "stop", float(r), float(a)))
    return rollouts, dropped


def reward_metrics(groups: list[RolloutGroup]) -> dict:
    rewards = [r for g in groups for r in g.rewards if r is not None]
    tokens = [c.num_tokens for g in groups for c in g.answers]
    return {
        "prompts": len(groups),
        "answers": sum(len(g.answers) for g in groups),
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "scored": len(rewards),
        "mean_tokens": sum(tokens) / max(1, len(tokens)),
    }


def rl_stage(
    at: StageContext, model: ModelRef, reference: ModelRef, groups: list[RolloutGroup], cfg: RLConfig
) -> ModelRef:
    """M_{t+1} = one RL round on M_t's answers; iter_t/rl holds the per-step history."""
    inputs = [model.key, reference.key, *[f"{g.prompt}{[c.text for c in g.answers]}{g.rewards}" for g in groups]]
    stage = at.stage("rl", {"cfg": cfg.key(), "seed": at.seed}, inputs)
    out = ModelRef(label=f"M{at.t + 1}", path=stage.dir / "model", key=stage.key)
    model_cfg = at.pool.model_cfg(model)
    load = lambda path: load_model(path, model_cfg.dtype, model_cfg.chat_template, model_cfg.device)

    def train() -> tuple[list[dict], dict]:
        rollouts, dropped = rollouts_with_advantages(groups, cfg)
        if not rollouts:
            raise NoPairsError(f"iteration {at.t}: no sampled answer with a non-zero advantage (dropped: {dropped})")
        started = time.perf_counter()
        ref_logps = None
        if cfg.kl_coef:

            def compute() -> list[list[float]]:
                ref = load(reference.path)
                encoded = encode_rollouts(ref.tokenizer, rollouts, cfg.max_length)
                return token_logprobs(ref.model, encoded, ref.tokenizer.pad_token_id, cfg.batch_size, cfg)[0]

            ref_logps = cached(stage.resumable_file("reference_token_logps.json"), compute)
        reference_seconds = time.perf_counter() - started
        loaded = load(model.path)
        checkpointer = TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
        old_cache = stage.resumable_file("old_token_logps.json")
        trained, history, stats = train_rl(loaded, rollouts, cfg, at.seed, ref_logps, old_cache, checkpointer)
        save_checkpoint(trained, loaded, out.path)
        seconds = time.perf_counter() - started
        final = history[-1]
        metrics = {
            **reward_metrics(groups),
            **stats,
            "algorithm": cfg.algorithm,
            "groups_used": len(groups) - sum(dropped.values()),
            "dropped": dropped,
            "steps": len(history),
            "final_loss": final["loss"],
            "final_kl": final["kl"],
            "reference_seconds": round(reference_seconds, 2),
            "seconds": round(seconds, 1),
        }
        return history, metrics

    stage.ensure(train)
    return out
