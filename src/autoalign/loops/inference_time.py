"""Inference-time alignment compared (loop: inference_time): no training. The survey's point that
outputs can be improved at decoding time (Shen et al. 2023, "Large Language Model Alignment: A
Survey", section on inference-time alignment) is measured here: each method of
config.evaluation.INFERENCE_METHODS answers the same IFEval prompts with M1, is scored by the
IFEval checkers, paired per prompt against the baseline method (plain sampling), judged head to
head against it, and charged the tokens and seconds it spent.

    runs/<name>/iter_1/inference_samples          n samples per prompt, drawn once, shared
    runs/<name>/iter_1/inference_<method>         each method's answer, tokens and seconds
    runs/<name>/iter_1/ifeval_inference_<method>  its IFEval scores
    runs/<name>/iter_1/h2h_<method>               head to head against the baseline
    runs/<name>/inference_time.json               the table (summary.print_inference_table)

A method that starts from the shared samples is charged their share (plain: one sample's tokens
and seconds; best-of-N: all n) plus what it generated itself, judging included.

Run it:  autoalign run recipes/inference_time.yaml
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from autoalign.config import ConfigError, RunConfig
from autoalign.config.evaluation import INFERENCE_TABLE, ORACLE_METHODS
from autoalign.eval import suite
from autoalign.eval.paired import ifeval_paired_metrics
from autoalign.generation.base import MeteredGenerator, sampling_params
from autoalign.inference.best_of_n import pick_best
from autoalign.inference.constitutional import (
    CRITIQUE_TEMPLATE,
    REVISION_TEMPLATE,
    critique_and_revise,
    load_constitution,
)
from autoalign.inference.debate import JUDGE_TEMPLATE, TURN_TEMPLATE, debate
from autoalign.inference.self_consistency import consensus
from autoalign.inference.self_refine import (
    FEEDBACK_TEMPLATE,
    REVISE_TEMPLATE,
    SelfFeedback,
    VerifierFeedback,
    self_refine,
)
from autoalign.inference.urial import InContextGenerator, load_in_context
from autoalign.io import DataError, write_json
from autoalign.judges.base import JudgeItem
from autoalign.judges.pairwise import PairwiseItem
from autoalign.judges.verifier import IFEvalVerifier
from autoalign.loops.context import RunContext
from autoalign.loops.rounds import initial_model
from autoalign.runtime.pool import ModelRef
from autoalign.stages.common import StageContext, run_items
from autoalign.types import Candidate, Prompt
from autoalign.verifiers.ifeval import SCORER_VERSION, IFEvalPrompt, accuracy, load_ifeval, score_response

USES_SAMPLES = {
    "plain": 1,
    "best_of_n_verifier": None,  # None: all n
    "best_of_n_judge": None,
    "self_consistency": None,
    "self_refine": 1,
    "self_refine_verifier": 1,
    "constitutional": 1,
    "debate": 2,
}
TEMPLATES = {
    "self_refine": (FEEDBACK_TEMPLATE, REVISE_TEMPLATE, "judge_rubric"),
    "best_of_n_judge": ("judge_rubric",),
    "constitutional": (CRITIQUE_TEMPLATE, REVISION_TEMPLATE),
    "debate": (TURN_TEMPLATE, JUDGE_TEMPLATE),
}


@dataclass
class Job:
    """What a method sees for one chunk of prompts: the model's generator (metered), the
    requests, their shared samples, and the IFEval item behind each prompt."""

    generator: MeteredGenerator
    prompts: list[Prompt]
    samples: list[list[Candidate]]
    items: list[IFEvalPrompt]
    ctx: RunContext

    @property
    def requests(self):
        return [p.messages for p in self.prompts]


def _rubric(job: Job):
    make = job.ctx.make_judge
    judge_on = getattr(make, "judge_on", None)  # a rubric judge asks the metered generator
    return judge_on(job.generator, job.ctx.cfg.judge, job.ctx.seed) if judge_on else make(None, job.ctx.cfg.judge, 0)


def _picked(job: Job, scores: list[list[float | None]]) -> list[tuple[Candidate, dict]]:
    return [(s[pick_best(sc)], {"scores": sc, "picked": pick_best(sc)}) for s, sc in zip(job.samples, scores)]


def _judged(judge, job: Job) -> list[list[float | None]]:
    items = [JudgeItem(req, c.text) for req, group in zip(job.requests, job.samples) for c in group]
    verdicts = iter(judge.judge(items))
    return [[next(verdicts).score for _ in group] for group in job.samples]


def plain(job: Job):
    return [(group[0], {}) for group in job.samples]


def greedy(job: Job):
    params = replace(sampling_params(job.ctx.cfg.inference_time.sampling, n=1, seed=job.ctx.seed), temperature=0.0)
    return [(c, {}) for [c] in job.generator.generate(job.requests, params)]


def urial(job: Job):
    cfg = job.ctx.cfg.inference_time
    aligned = InContextGenerator(job.generator, load_in_context(cfg.urial))
    return [(c, {}) for [c] in aligned.generate(job.requests, sampling_params(cfg.sampling, n=1, seed=job.ctx.seed))]


def best_of_n_verifier(job: Job):
    return _picked(job, _judged(IFEvalVerifier(job.items), job))


def best_of_n_judge(job: Job):
    return _picked(job, _judged(_rubric(job), job))


def self_consistency(job: Job):
    cfg = job.ctx.cfg.consistency
    out = []
    for group in job.samples:
        agreed = consensus([c.text for c in group], cfg.agreement, cfg.threshold)
        out.append((group[agreed.representative], {"confidence": agreed.confidence, "cluster": agreed.cluster}))
    return out


def _refined(job: Job, judge, feedback):
    cfg = job.ctx.cfg.self_refine
    params = sampling_params(cfg.sampling, n=1, seed=job.ctx.seed)
    drafts = [group[0] for group in job.samples]
    refined = self_refine(
        job.generator, judge, feedback(params), job.requests, params, cfg.max_rounds, drafts=[d.text for d in drafts]
    )
    return [(d if r.best == 0 else Candidate(r.answer, 0, "stop"), r.to_dict()) for d, r in zip(drafts, refined)]


def self_refine_self(job: Job):
    return _refined(job, _rubric(job), lambda params: SelfFeedback(job.generator, params))


def self_refine_verifier(job: Job):
    return _refined(job, IFEvalVerifier(job.items), lambda params: VerifierFeedback(job.items))


def constitutional(job: Job):
    cfg = job.ctx.cfg.constitution
    params = sampling_params(cfg.sampling, n=1, seed=job.ctx.seed)
    drafts = [group[0].text for group in job.samples]
    revisions = critique_and_revise(
        job.generator, load_constitution(cfg.file), job.requests, drafts, params, job.ctx.seed
    )
    return [(Candidate(r.revised, 0, r.finish_reason, error=r.error), r.to_dict()) for r in revisions]


def debated(job: Job):
    cfg = job.ctx.cfg.debate
    items = [PairwiseItem(req, group[0].text, group[1].text) for req, group in zip(job.requests, job.samples)]
    params = sampling_params(cfg.sampling, n=1, seed=job.ctx.seed)
    judge_params = sampling_params(cfg.judge_sampling, n=1, seed=job.ctx.seed)
    both = (job.generator, job.generator)
    held = debate(both, job.generator, items, cfg.rounds, params, judge_params, cfg.single_pass)
    # The second answer only when the judge preferred it; a tie or no verdict keeps the first.
    return [
        (group[1] if d.preference.winner == "second" else group[0], d.to_dict()) for group, d in zip(job.samples, held)
    ]


METHODS: dict[str, Callable[[Job], list[tuple[Candidate, dict]]]] = {
    "plain": plain,
    "greedy": greedy,
    "best_of_n_verifier": best_of_n_verifier,
    "best_of_n_judge": best_of_n_judge,
    "self_consistency": self_consistency,
    "self_refine": self_refine_self,
    "self_refine_verifier": self_refine_verifier,
    "constitutional": constitutional,
    "urial": urial,
    "debate": debated,
}


def _timed(process: Callable[[list[str]], list[dict]]) -> Callable[[list[str]], list[dict]]:
    """Each row also gets its share of the chunk's wall time (shares survive a resume)."""

    def timed(ids: list[str]) -> list[dict]:
        started = time.perf_counter()
        rows = process(ids)
        for row in rows:
            row["seconds"] = (time.perf_counter() - started) / len(rows)
        return rows

    return timed


def draw_samples(ctx: RunContext, at: StageContext, model: ModelRef, prompts: list[Prompt], name: str) -> dict:
    """n samples per prompt: {prompt id: {"candidates": [Candidate], "seconds": its share}}."""
    cfg = ctx.cfg.inference_time
    inputs = [model.key, *[p.id + p.text for p in prompts]]
    stage = at.stage(name, {"sampling": cfg.sampling.key(), "n": cfg.n, "seed": at.seed}, inputs, kind="samples")
    by_id = {p.id: p for p in prompts}
    params = sampling_params(cfg.sampling, n=cfg.n, seed=at.seed)

    def process(ids: list[str]) -> list[dict]:
        groups = at.pool.generator(model, cfg.sampling.batch_size).generate([by_id[i].messages for i in ids], params)
        return [{"id": i, "candidates": [c.to_dict() for c in group]} for i, group in zip(ids, groups)]

    def summarize(rows: list[dict], seconds: float) -> dict:
        cands = [c for r in rows for c in r["candidates"]]
        return {
            "model": model.label,
            "prompts": len(rows),
            "candidates": len(cands),
            "mean_tokens": sum(c["num_tokens"] for c in cands) / max(1, len(cands)),
            "truncated": sum(c["finish_reason"] == "length" for c in cands),
            "failed": sum(c["finish_reason"] == "error" for c in cands),
        }

    error_of = lambda row: next((c["error"] for c in row["candidates"] if c.get("error")), None)
    rows = run_items(
        at,
        stage,
        prompts,
        _timed(process),
        summarize,
        error_of,
        chunk_size=cfg.sampling.batch_size,
        model=model,
        concurrent=False,
    )  # fmt: skip: one chunk at a time, so its wall time is its own
    return {
        r["id"]: {"candidates": [Candidate.from_dict(c) for c in r["candidates"]], "seconds": r["seconds"]}
        for r in rows
    }


def method_answers(
    ctx: RunContext,
    at: StageContext,
    model: ModelRef,
    label: str,
    method: str,
    prompts: list[Prompt],
    items: dict[str, IFEvalPrompt],
    samples: dict[str, dict],
) -> list[dict]:
    """Stage inference_<label>: each prompt's answer by `method`, with the tokens and seconds it
    cost (its share of the shared samples included)."""
    cfg = ctx.cfg
    used = USES_SAMPLES.get(method, 0)  # 0: generates its own answers; None: all n samples
    take = cfg.inference_time.n if used is None else used
    section = {"debate": cfg.debate, "constitutional": cfg.constitution, "self_consistency": cfg.consistency}
    section |= {"self_refine": cfg.self_refine, "best_of_n_judge": cfg.judge}
    config = {
        "method": method,
        "seed": at.seed,
        "sampling": cfg.inference_time.sampling.key(),
        "n": cfg.inference_time.n,
        "section": section[method].key() if method in section else None,
        "urial": cfg.inference_time.urial if method == "urial" else None,
        "judge": ctx.make_judge.key if method in ("best_of_n_judge", "self_refine") else None,
    }
    shown = lambda p: "".join(c.text for c in samples[p.id]["candidates"][:take]) if take else ""
    inputs = [model.key, *[p.id + p.text + shown(p) for p in prompts]]
    stage = at.stage(f"inference_{label}", config, inputs, TEMPLATES.get(method, ()), kind="inference_answers")
    by_id = {p.id: p for p in prompts}

    def process(ids: list[str]) -> list[dict]:
        generator = MeteredGenerator(at.pool.generator(model, cfg.inference_time.sampling.batch_size))
        shared = [samples[i]["candidates"][:take] if take else [] for i in ids]
        job = Job(generator, [by_id[i] for i in ids], shared, [items[i] for i in ids], ctx)
        answers = METHODS[method](job)
        rows = []
        for i, group, (answer, detail) in zip(ids, shared, answers):
            sampled = sum(c.num_tokens for c in group)
            sample_seconds = samples[i]["seconds"] * len(group) / cfg.inference_time.n if group else 0.0
            rows.append({
                "id": i, "answer": answer.to_dict(), "detail": detail,
                "sample_tokens": sampled, "sample_seconds": sample_seconds,
                "own_tokens": generator.tokens / len(ids),
            })  # fmt: skip
        return rows

    def summarize(rows: list[dict], seconds: float) -> dict:
        return {"model": model.label, "method": method, **cost(rows)}

    error_of = lambda row: row["answer"].get("error")
    return run_items(
        at, stage, prompts, _timed(process), summarize, error_of,
        chunk_size=cfg.inference_time.sampling.batch_size, model=model, concurrent=False,
    )  # fmt: skip


def cost(rows: list[dict]) -> dict:
    """Per prompt: tokens generated (shared samples used + the method's own, judging included)
    and seconds (their share of the sampling wall time + the method's own)."""
    n = max(1, len(rows))
    return {
        "prompts": len(rows),
        "tokens_per_prompt": sum(r["sample_tokens"] + r["own_tokens"] for r in rows) / n,
        "seconds_per_prompt": sum(r["sample_seconds"] + r["seconds"] for r in rows) / n,
    }


def scored(at: StageContext, label: str, items: list[IFEvalPrompt], rows: list[dict]) -> list[dict]:
    """Stage ifeval_inference_<label>: the IFEval checkers on each method's answers."""
    answers = {r["id"]: r["answer"]["text"] for r in rows}
    prompts = [item.to_prompt() for item in items]
    inputs = [f"{item.key}{item.instruction_ids}{item.kwargs}" + answers[p.id] for item, p in zip(items, prompts)]

    def score() -> tuple[list[dict], dict]:
        results = [score_response(item, answers[p.id]) for item, p in zip(items, prompts)]
        out = [
            {"id": p.id, "prompt": item.prompt, "instruction_ids": item.instruction_ids, "response": answers[p.id],
             **r.to_dict()}
            for item, p, r in zip(items, prompts, results)
        ]  # fmt: skip
        return out, {"model": label, **accuracy(results, items)}

    stage = at.stage(f"ifeval_inference_{label}", {"scorer": SCORER_VERSION}, inputs, kind="ifeval_inference")
    return stage.ensure(score).rows()


def check_config(cfg: RunConfig) -> None:
    """The files the chosen methods read are read now, before the run directory exists: the
    IFEval prompts, the in-context alignment file (urial), the constitution (constitutional)."""
    load_ifeval(cfg.eval.ifeval_file)
    methods = {*cfg.inference_time.methods, *cfg.inference_time.base_methods}
    readers = {
        "urial": ("inference_time.urial", load_in_context, cfg.inference_time.urial),
        "constitutional": ("constitution.file", load_constitution, cfg.constitution.file),
    }
    for setting, load, spec in (reader for method, reader in readers.items() if method in methods):
        try:
            load(spec)
        except DataError as e:
            raise ConfigError(f"{setting}: {e}") from None


def run(ctx: RunContext, m0: ModelRef) -> dict:
    cfg = ctx.cfg.inference_time
    m1 = initial_model(ctx, m0)
    at = ctx.at(1)
    items = load_ifeval(ctx.cfg.eval.ifeval_file)[: cfg.prompts]
    prompts = [item.to_prompt() for item in items]
    by_id = {p.id: item for p, item in zip(prompts, items)}
    targets = [("", m1, cfg.methods)]
    if cfg.base_methods:  # the config made sure M1 is M0 after SFT
        targets.append(("base:", ModelRef("M0", m0.path, m0.key), cfg.base_methods))
    answered, scores = {}, {}
    for prefix, model, methods in targets:
        needs_samples = any(m in USES_SAMPLES for m in methods)
        name = "inference_samples" + ("_base" if prefix else "")
        samples = draw_samples(ctx, at, model, prompts, name) if needs_samples else {}
        for method in methods:
            label = prefix + method
            ctx.log(f"inference_time: {label}")
            file_label = label.replace(":", "_")
            answered[label] = method_answers(ctx, at, model, file_label, method, prompts, by_id, samples)
            scores[label] = scored(at, file_label, items, answered[label])
    table = compare_methods(ctx, at, m1, prompts, answered, scores)
    write_json(ctx.store.root / INFERENCE_TABLE, {"model": str(m1.path), "baseline": cfg.baseline, "methods": table})
    return {"final_model": None, "methods": table}


def compare_methods(ctx, at, judge_model, prompts, answered, scores) -> dict[str, dict]:
    """Each method's row: IFEval strict and loose paired against the baseline, the head to head
    against it (on the first head_to_head_prompts), and its cost."""
    cfg = ctx.cfg.inference_time
    judge = ctx.teacher if ctx.cfg.eval.judge == "teacher" else judge_model
    candidates = lambda label: {r["id"]: Candidate.from_dict(r["answer"]) for r in answered[label]}
    baseline = cfg.baseline
    table = {}
    for label in answered:
        row = {"oracle": label.split(":")[-1] in ORACLE_METHODS, **cost(answered[label])}
        paired = ifeval_paired_metrics(scores[label], scores[baseline], held_out=[])
        row |= {"prompt_strict": paired["prompt_strict"], "prompt_loose": paired["prompt_loose"]}
        if label != baseline and cfg.head_to_head_prompts:
            h2h_prompts = prompts[: cfg.head_to_head_prompts]
            answers_of = {label: candidates(label), baseline: candidates(baseline)}
            name = f"h2h_{label.replace(':', '_')}_vs_{baseline}"
            row["head_to_head"] = suite.head_to_head(at, h2h_prompts, answers_of, judge, ctx.cfg.judge, name=name)
        table[label] = row
    return table
