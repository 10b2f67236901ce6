"""SFT (M0 -> M1) and DPO (M_t -> M_{t+1}) as stages: the checkpoint lands in the stage's
directory, and an interrupted stage resumes from its last mid-training checkpoint."""

from __future__ import annotations

import time

from autoalign.config import DPOConfig, SFTConfig
from autoalign.pairs import NoPairsError
from autoalign.runtime.pool import ModelPool, ModelRef, save_checkpoint
from autoalign.store import RunStore
from autoalign.train.dpo import train_dpo
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Message, Pair


def train_dpo_stage(
    store: RunStore, t: int, model: ModelRef, pairs: list[Pair], cfg: DPOConfig, pool: ModelPool, seed: int
) -> ModelRef:
    """M_{t+1} = DPO(M_t, pairs) with reference M_t; the checkpoint lands in iter_t/dpo/model."""
    stage = store.stage(t, "dpo", {"cfg": cfg.key(), "seed": seed}, [model.key, *[str(p.to_dict()) for p in pairs]])
    out = ModelRef(label=f"M{t + 1}", path=stage.dir / "model", key=stage.key)
    if stage.done():
        return out
    if not pairs:
        pairs_metrics = store.root / f"iter_{t}/pairs/metrics.json"
        dropped = store.metrics(t, "pairs").get("dropped") if pairs_metrics.exists() else None
        raise NoPairsError(
            f"iteration {t}: no preference pairs to train on (dropped: {dropped or 'none'}; see {pairs_metrics})"
        )
    stage.begin()
    loaded = pool.fresh(model)
    started = time.perf_counter()
    checkpointer = TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
    trained, history, stats = train_dpo(
        loaded, pairs, cfg, seed, stage.resumable_file("reference_logps.json"), checkpointer
    )
    elapsed = time.perf_counter() - started
    save_checkpoint(trained, loaded, out.path)
    final = history[-1]
    stage.finish(
        history,
        {
            **stats,
            "steps": len(history),
            "final_loss": final["loss"],
            "final_accuracy": final["rewards/accuracy"],
            "final_margin": final["rewards/margins"],
            "seconds": elapsed,
            "pairs_per_second": len(pairs) * cfg.epochs / elapsed,
        },
    )
    return out


def train_sft_stage(
    store: RunStore, model: ModelRef, conversations: list[list[Message]], cfg: SFTConfig, pool: ModelPool, seed: int
) -> ModelRef:
    """M1 = SFT(M0) on the IFT (+ EFT) seed; iteration 0 of the run."""
    stage = store.stage(0, "sft", {"cfg": cfg.key(), "seed": seed}, [model.key, *[str(c) for c in conversations]])
    out = ModelRef(label="M1", path=stage.dir / "model", key=stage.key)
    if stage.done():
        return out
    stage.begin()
    loaded = pool.fresh(model)
    started = time.perf_counter()
    trained, history, stats = train_sft(
        loaded, conversations, cfg, seed, TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
    )
    save_checkpoint(trained, loaded, out.path)
    stage.finish(
        history,
        {**stats, "steps": len(history), "final_loss": history[-1]["loss"], "seconds": time.perf_counter() - started},
    )
    return out
