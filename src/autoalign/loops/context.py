"""What every stage of a run needs, gathered once: config, stores, model pool, seed data, the
judge factory and the teacher."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

import yaml

from autoalign.config import RunConfig
from autoalign.config import ConfigError
from autoalign.data import load_eft, located_ift, located_prompts
from autoalign.judges.rubric import RubricJudgeFactory, eft_conversation, judge_demonstrations
from autoalign.data.fit import check_prompts_fit
from autoalign.data.ranked import load_ranked
from autoalign.verifiers.ifeval import load_ifeval
from autoalign.models.loading import context_length, load_tokenizer
from autoalign.generation.openai import check_endpoint
from autoalign.io import atomic_write_text, sweep_temporaries
from autoalign.registry import FEEDBACK, VERIFIERS, load_attr
from autoalign.runlock import RunLock
from autoalign.judges.base import JudgeFactory
from autoalign.runtime.pool import AnyModelRef, EndpointRef, ModelPool, ModelRef
from autoalign.models import resolve_model
from autoalign.stages.common import StageContext
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
    make_judge: JudgeFactory
    """Judges the feedback (self_reward, teacher_reward): the rubric, a verifier or a reward model."""
    make_eval_judge: JudgeFactory
    """Judges the evaluation: never the verifier, which knows only its own prompts."""
    teacher: AnyModelRef | None

    @property
    def seed(self) -> int:
        return self.cfg.seed

    @property
    def seed_instructions(self) -> list[str]:
        return [conv[-2]["content"] for conv in self.ift]

    def at(self, t: int, shared: bool = False) -> StageContext:
        """Where iteration t's stages land: this run's (or branch's) store, or with shared=True the
        store every branch of a comparison shares."""
        return StageContext(self.shared if shared else self.store, t, self.pool, self.seed)

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
    return ModelRef(
        label=f"teacher {teacher.name}", path=path, key=content_key(model_cfg.key(), str(path)), config=model_cfg
    )


def check_data_fits(cfg: RunConfig, m0_path: Path, located_seed, located_heldout) -> None:
    """Every data file the run will read is read now, and every prompt the student will answer
    must fit its context with room for the answer: bad data fails before any work, not after
    an iteration. located_*: ("file:line", ...) rows, see data.located_ift / located_prompts."""
    prompt_of = lambda conversation: conversation[:-1]
    answer = (cfg.sample.sampling.max_new_tokens, "sample.sampling.max_new_tokens")
    checks = [
        (
            [(w, prompt_of(c)) for w, c in located_seed],
            cfg.create_prompts.sampling.max_new_tokens,
            "create_prompts.sampling.max_new_tokens",
        )
    ]
    if cfg.eval.enabled:
        checks.append(
            (
                [(w, p.messages) for w, p in located_heldout[: cfg.eval.num_prompts]],
                cfg.eval.sampling.max_new_tokens,
                "eval.sampling.max_new_tokens",
            )
        )
    if cfg.create_prompts.from_file:
        checks.append(([(w, p.messages) for w, p in located_prompts(cfg.create_prompts.from_file)], *answer))
    if cfg.loop == "inference_time":
        from autoalign.loops import inference_time

        inference_time.check_config(cfg)
    for run in [cfg, *(cfg.optimizer_config(name) for name in cfg.optimizers)]:
        if run.loop == "rl":
            from autoalign.loops import rl, verified

            rl.check_config(run)
            verified.check_config(run)
    for source in sorted(set(cfg.branches) or set(cfg.sources)):
        if FEEDBACK[source].check_config:
            load_attr(FEEDBACK[source].check_config)(cfg)
        if setting := FEEDBACK[source].prompt_file_setting:
            conversations = located_ift(attrgetter(setting)(cfg))
            checks.append(([(w, prompt_of(c)) for w, c in conversations], *answer))
    if cfg.eval.enabled and cfg.eval.ifeval_prompts:
        load_ifeval(cfg.eval.ifeval_file)
    if cfg.eval.enabled and cfg.eval.reward_data:
        load_ranked(cfg.eval.reward_data)
    context = context_length(m0_path)
    if context is None:
        return
    try:
        tokenizer = load_tokenizer(m0_path, cfg.model.chat_template)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for located, max_new_tokens, setting in checks:
        check_prompts_fit(tokenizer, context, located, max_new_tokens, setting)


def choose_backend(cfg: RunConfig, m0_path: Path, log: Callable[[str], None]) -> None:
    """Settle `model.backend: auto` (the answers' keys name the backend that made them) and check
    an engine backend before the run directory exists: its server is built now if missing."""
    from autoalign.engines.llamacpp import check_engine, settle_auto_backend
    from autoalign.engines.vllm import check_vllm

    settle_auto_backend(cfg.model, m0_path, log)
    if cfg.model.backend == "llamacpp":
        check_engine(cfg.model, m0_path, log)
    elif cfg.model.backend == "vllm":
        check_vllm(cfg.model)


def build_context(
    cfg: RunConfig, log: Callable[[str], None], make_judge: JudgeFactory | None = None, retry_failed: bool = False
) -> tuple[RunContext, ModelRef]:
    """(context, M0). Loads and checks all data before any model is touched, and checks the
    models and endpoints before the run directory is created."""
    located_seed = located_ift(cfg.data.ift)
    ift = [conversation for _, conversation in located_seed]
    eft = load_eft(cfg.data.eft) if cfg.data.eft else []
    located_heldout = located_prompts(cfg.data.heldout, source="heldout")
    heldout = [p for _, p in located_heldout]
    m0_path = resolve_model(cfg.model.name, log=log)
    choose_backend(cfg, m0_path, log)
    m0 = ModelRef("M0", m0_path, content_key(cfg.model.key(), str(m0_path)))
    check_data_fits(cfg, m0_path, located_seed, located_heldout)
    run_dir = Path(cfg.run_dir)
    pool = ModelPool(
        cfg.model,
        http_cache_dir=run_dir / "http_cache",
        answer_cache_dir=run_dir / "answer_cache",
        engine_dir=run_dir / "engines",
    )
    teacher = teacher_ref(cfg, log)
    if isinstance(teacher, EndpointRef):  # an unset key or a server that is down: say so before any work
        listed = check_endpoint(teacher.endpoint)
        if listed and teacher.endpoint.model not in listed:
            log(f"warning: {teacher.label} is not among the models the server lists ({', '.join(listed[:5])})")
    demonstrations = judge_demonstrations(
        eft, cfg.judge.fewshot_scores, cfg.judge.max_response_chars, source=str(cfg.data.eft)
    )
    eval_judge = make_judge or RubricJudgeFactory(pool, tuple(demonstrations))
    feedback_judge = eval_judge
    if cfg.judge.verifier:
        feedback_judge = load_attr(VERIFIERS[cfg.judge.verifier])(cfg.judge)
    elif cfg.judge.reward_model:
        from autoalign.judges.reward_model import RewardModelJudgeFactory

        feedback_judge = RewardModelJudgeFactory(cfg.judge.reward_model)
    store = RunStore(cfg.run_dir, retry_failed)  # creates the run directory: everything is checked by now
    ctx = RunContext(
        cfg=cfg,
        store=store,
        shared=store,
        pool=pool,
        log=log,
        ift=ift,
        eft_conversations=[eft_conversation(e, cfg.judge.max_response_chars) for e in eft],
        heldout=heldout,
        make_judge=feedback_judge,
        make_eval_judge=eval_judge,
        teacher=teacher,
    )
    return ctx, m0


@contextmanager
def writing_run_dir(cfg: RunConfig, log: Callable[[str], None]) -> Iterator[None]:
    """Held while a run writes its directory: the one-writer lock (runlock.py), the temporaries of
    interrupted writes swept, then the resolved config as runs/<name>/config.yaml (the report
    shows it). Enter only after build_context has checked data, models and endpoints."""
    with RunLock(cfg.run_dir, log):
        if swept := sweep_temporaries(cfg.run_dir):
            log(f"removed {swept} temporary file(s) an interrupted run left in {cfg.run_dir}")
        atomic_write_text(cfg.run_dir / "config.yaml", yaml.safe_dump(cfg.redacted_dump(), sort_keys=False))
        yield
