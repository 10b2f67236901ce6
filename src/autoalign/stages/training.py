"""SFT (M0 -> M1) and DPO (M_t -> M_{t+1}) as stages: the checkpoint lands in the stage's
directory, and an interrupted stage resumes from its last mid-training checkpoint."""

from __future__ import annotations

import time

from autoalign.config import DPOConfig, SFTConfig
from autoalign.pairs import NoPairsError
from autoalign.runtime.pool import ModelRef, save_checkpoint
from autoalign.stages.common import StageContext
from autoalign.train.dpo import train_dpo
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Message, Pair


def train_dpo_stage(at: StageContext, model: ModelRef, pairs: list[Pair], cfg: DPOConfig) -> ModelRef:
    """M_{t+1} = DPO(M_t, pairs) with reference M_t; the checkpoint lands in iter_t/dpo/model."""
    t, store = at.t, at.store
    stage = at.stage("dpo", {"cfg": cfg.key(), "seed": at.seed}, [model.key, *[str(p.to_dict()) for p in pairs]])
    out = ModelRef(label=f"M{t + 1}", path=stage.dir / "model", key=stage.key)
    if not pairs and not stage.done():
        pairs_metrics = store.root / f"iter_{t}/pairs/metrics.json"
        dropped = store.metrics(t, "pairs").get("dropped") if pairs_metrics.exists() else None
        raise NoPairsError(
            f"iteration {t}: no preference pairs to train on (dropped: {dropped or 'none'}; see {pairs_metrics})"
        )

    def train() -> tuple[list[dict], dict]:
        loaded = at.pool.fresh(model)
        started = time.perf_counter()
        checkpointer = TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
        reference_cache = stage.resumable_file("reference_logps.json")
        trained, history, stats = train_dpo(loaded, pairs, cfg, at.seed, reference_cache, checkpointer)
        elapsed = time.perf_counter() - started
        save_checkpoint(trained, loaded, out.path)
        final = history[-1]
        metrics = {
            **stats,
            "steps": len(history),
            "final_loss": final["loss"],
            "final_accuracy": final["rewards/accuracy"],
            "final_margin": final["rewards/margins"],
            "seconds": elapsed,
            "pairs_per_second": len(pairs) * cfg.epochs / elapsed,
        }
        return history, metrics

    stage.ensure(train)
    return out


def train_sft_stage(at: StageContext, model: ModelRef, conversations: list[list[Message]], cfg: SFTConfig) -> ModelRef:
    """M1 = SFT(M0) on the IFT (+ EFT) seed; iteration 0 of the run."""
    stage = at.stage("sft", {"cfg": cfg.key(), "seed": at.seed}, [model.key, *[str(c) for c in conversations]])
    out = ModelRef(label="M1", path=stage.dir / "model", key=stage.key)

    def train() -> tuple[list[dict], dict]:
        loaded = at.pool.fresh(model)
        started = time.perf_counter()
        checkpointer = TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
        trained, history, stats = train_sft(loaded, conversations, cfg, at.seed, checkpointer)
        save_checkpoint(trained, loaded, out.path)
        seconds = time.perf_counter() - started
        return history, {**stats, "steps": len(history), "final_loss": history[-1]["loss"], "seconds": seconds}

    stage.ensure(train)
    return out
