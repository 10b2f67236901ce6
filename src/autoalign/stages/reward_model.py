"""A stage that trains a Bradley-Terry reward model (train/reward_model.py) and records its
margins on the comparisons to score: the weak and strong models of `autoalign w2s`, and the
reward-model critic of the routed-critic loop."""

from __future__ import annotations

import json
import time

from autoalign.config import TrainConfig
from autoalign.models import resolve_model
from autoalign.stages.common import StageContext
from autoalign.train.reward_model import Comparison, load_reward_model, reward_margins, train_reward_model


def reward_model_stage(
    at: StageContext,
    name: str,
    base: str,
    train: list[Comparison],
    score: dict[str, Comparison],
    cfg: TrainConfig,
    alpha: float = 0.0,
    kind: str = "w2s_model",
) -> dict[str, float]:
    """Train a reward model on `base` and record its margins r(first) - r(second) on the `score`
    comparisons (id -> comparison): stage iter_t/<name>, rows {id, margin}."""
    path = resolve_model(base)
    # Prompts and texts enter the key, not only ids: an id names a prompt, its answers can change upstream.
    text = lambda c: "\x00".join([json.dumps(c.prompt, sort_keys=True), c.first, c.second])
    inputs = [str(path), *[f"{text(c)}\x00{c.target}" for c in train]]
    inputs += [f"{i}\x00{text(score[i])}" for i in sorted(score)]
    config = {"train": cfg.key(), "alpha": alpha, "seed": at.seed}

    def build() -> tuple[list[dict], dict]:
        started = time.perf_counter()
        model, tokenizer = load_reward_model(path, seed=at.seed)
        model, history = train_reward_model(model, tokenizer, train, cfg, at.seed, alpha, desc=name)
        ids = sorted(score)
        margins = reward_margins(model, tokenizer, [score[i] for i in ids], cfg)
        metrics = {
            "base": base,
            "trained_on": len(train),
            "steps": len(history),
            "final_loss": history[-1]["loss"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        return [{"id": i, "margin": m} for i, m in zip(ids, margins)], {**metrics, "history": history}

    stage = at.stage(name, config, inputs, kind=kind).ensure(build)
    return {r["id"]: r["margin"] for r in stage.rows()}
