"""SFT (M0 -> M1) and DPO (M_t -> M_{t+1}) as stages: the checkpoint lands in the stage's
directory, and an interrupted stage resumes from its last mid-training checkpoint. Under a
multi-process launch the other processes train with the main one (train/jobs.py)."""

from __future__ import annotations

import time

from autoalign.config import DPOConfig, SFTConfig
from autoalign.pairs import NoPairsError
from autoalign.prompts import template_digest
from autoalign.train.losses import loss_class
from autoalign.runtime.pool import ModelRef, save_checkpoint
from autoalign.stages.common import StageContext
from autoalign.train import jobs
from autoalign.train.jobs import TrainingJob
from autoalign.types import Message, Pair


def train_dpo_stage(at: StageContext, model: ModelRef, pairs: list[Pair], cfg: DPOConfig) -> ModelRef:
    """M_{t+1} = DPO(M_t, pairs) with reference M_t; the checkpoint lands in iter_t/dpo/model."""
    t, store = at.t, at.store
    templates = getattr(loss_class(cfg.loss), "templates", ())
    config = {"cfg": cfg.key(), "seed": at.seed, **({"templates": template_digest(*templates)} if templates else {})}
    stage = at.stage("dpo", config, [model.key, *[str(p.to_dict()) for p in pairs]])
    out = ModelRef(label=f"M{t + 1}", path=stage.dir / "model", key=stage.key)
    if not pairs and not stage.done():
        pairs_metrics = store.root / f"iter_{t}/pairs/metrics.json"
        dropped = store.metrics(t, "pairs").get("dropped") if pairs_metrics.exists() else None
        raise NoPairsError(
            f"iteration {t}: no preference pairs to train on (dropped: {dropped or 'none'}; see {pairs_metrics})"
        )

    def train() -> tuple[list[dict], dict]:
        job = TrainingJob(
            "dpo", model.path, at.pool.model_cfg(model), pairs, cfg, at.seed, stage.train_state_path,
            reference_cache=stage.resumable_file("reference_logps.json"),
        )  # fmt: skip
        jobs.lead(job)
        loaded = job.load()
        started = time.perf_counter()
        trained, history, stats = jobs.run(job, loaded)
        elapsed = time.perf_counter() - started
        save_checkpoint(trained, loaded, out.path)
        final = history[-1]
        metrics = {
            **stats,
            "steps": len(history),
            "loss_name": cfg.loss,
            "final_loss": final["loss"],
            "final_accuracy": final.get("rewards/accuracy"),  # Chain of Hindsight is SFT: no rewards
            "final_margin": final.get("rewards/margins"),
            "skipped_batches": final.get("skipped_batches", 0),
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
        job = TrainingJob(
            "sft", model.path, at.pool.model_cfg(model), conversations, cfg, at.seed, stage.train_state_path
        )
        jobs.lead(job)
        loaded = job.load()
        started = time.perf_counter()
        trained, history, stats = jobs.run(job, loaded)
        save_checkpoint(trained, loaded, out.path)
        seconds = time.perf_counter() - started
        final = history[-1]
        metrics = {
            "steps": len(history),
            "final_loss": final["loss"],
            "skipped_batches": final.get("skipped_batches", 0),
        }
        return history, {**stats, **metrics, "seconds": seconds}

    stage.ensure(train)
    return out
