"""What every stage of a run needs, gathered once: config, stores, model pool, seed data, the
judge factory and the teacher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from autoalign.config import RunConfig
from autoalign.data import judge_demonstrations, load_eft, load_ift, load_prompts
from autoalign.generation.openai import check_endpoint
from autoalign.judges.verifier import VerifierJudgeFactory
from autoalign.loops import stages
from autoalign.loops.pool import AnyModelRef, EndpointRef, ModelPool, ModelRef
from autoalign.models import resolve_model
from autoalign.store import RunStore, content_key
from autoalign.types import Message, Prompt


@dataclass(frozen=True)
class RunContext:
    cfg: RunConfig
    store: RunStore
    """Where this run's (or this branch's) stages land."""
    shared: RunStore
    """Stages every branch of a comparison shares (SFT, created prompts, student samples); the
    same store as `store` in a plain run."""
    pool: ModelPool
    log: Callable[[str], None]
    ift: list[list[Message]]
    eft_conversations: list[list[Message]]
    heldout: list[Prompt]
    make_judge: stages.JudgeFactory
    """Judges the feedback (self_reward, teacher_reward): the rubric, or a verifier."""
    make_eval_judge: stages.JudgeFactory
    """Judges the evaluation: never the verifier, which knows only its own prompts."""
    teacher: AnyModelRef | None

    @property
    def seed(self) -> int:
        return self.cfg.seed

    @property
    def seed_instructions(self) -> list[str]:
        return [conv[-2]["content"] for conv in self.ift]

    def branch(self, cfg: RunConfig, store: RunStore) -> RunContext:
        return replace(self, cfg=cfg, store=store)


def teacher_ref(cfg: RunConfig, log: Callable[[str], None]) -> AnyModelRef | None:
    teacher = cfg.teacher
    if teacher is None:
        return None
    if teacher.endpoint is not None:
        return EndpointRef(label=f"teacher {teacher.endpoint.model}", endpoint=teacher.endpoint)
    path = resolve_model(teacher.name, log=log)
    model_cfg = teacher.model_config_for_pool()
    return ModelRef(label=f"teacher {teacher.name}", path=path, key=content_key(model_cfg.key(), str(path)), config=model_cfg)


def build_context(cfg: RunConfig, log: Callable[[str], None], make_judge: stages.JudgeFactory | None = None,
                  retry_failed: bool = False) -> tuple[RunContext, ModelRef]:
    """(context, M0). Loads and checks all data before any model is touched, and checks the
    models and endpoints before the run directory is created."""
    ift = load_ift(cfg.data.ift)
    eft = load_eft(cfg.data.eft) if cfg.data.eft else []
    heldout = load_prompts(cfg.data.heldout, source="heldout")
    m0_path = resolve_model(cfg.model.name, log=log)
    m0 = ModelRef("M0", m0_path, content_key(cfg.model.key(), str(m0_path)))
    pool = ModelPool(cfg.model, http_cache_dir=Path(cfg.run_dir) / "http_cache")
    teacher = teacher_ref(cfg, log)
    if isinstance(teacher, EndpointRef):  # an unset key or a server that is down: say so before any work
        listed = check_endpoint(teacher.endpoint)
        if listed and teacher.endpoint.model not in listed:
            log(f"warning: {teacher.label} is not among the models the server lists ({', '.join(listed[:5])})")
    store = RunStore(cfg.run_dir, retry_failed)
    demonstrations = judge_demonstrations(eft, cfg.judge.fewshot_scores, cfg.judge.max_response_chars)
    eval_judge = make_judge or stages.RubricJudgeFactory(pool, tuple(demonstrations))
    feedback_judge = VerifierJudgeFactory(cfg.judge.verifier_file) if cfg.judge.verifier == "ifeval" else eval_judge
    ctx = RunContext(
        cfg=cfg,
        store=store,
        shared=store,
        pool=pool,
        log=log,
        ift=ift,
        eft_conversations=[e.to_conversation(cfg.judge.max_response_chars) for e in eft],
        heldout=heldout,
        make_judge=feedback_judge,
        make_eval_judge=eval_judge,
        teacher=teacher,
    )
    return ctx, m0
