"""Stages shared by the loops. Each is a plain function: inputs, config and store in, artifact
out; a stage whose key is already recorded in the store returns its saved artifact at once."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from autoalign.data import load_prompts, resolve_data_path
from autoalign.config import CreatePromptsConfig, DPOConfig, JudgeConfig, SampleConfig, SamplingConfig, SFTConfig
from autoalign.generation.base import SamplingParams
from autoalign.io import DataError, write_jsonl
from autoalign.judges.base import Judge, JudgeItem
from autoalign.judges.rubric import RubricJudge
from autoalign.generation.openai import ZERO_USAGE, usage_delta
from autoalign.loops.pool import AnyModelRef, ModelPool, ModelRef, save_checkpoint
from autoalign.pairs import NoPairsError
from autoalign.prompts import render
from autoalign.store import RunStore, content_key, file_digest
from autoalign.synth.instructions import PromptFilter, fewshot_request, parse_tasks
from autoalign.train.dpo import train_dpo
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Candidate, Judgment, Message, Pair, Prompt


def chunk_seed(seed: int, ids: list[str]) -> int:
    """A chunk's own sampling seed: chunks draw different random streams, and a chunk redone
    after a crash draws the same one (chunks are fixed, see RunStore.map_items)."""
    return seed + int(content_key(ids), 16) % 1_000_003


def first_error(errors) -> str | None:
    return next((e for e in errors if e), None)


def sampling_params(cfg: SamplingConfig, n: int, seed: int, top_logprobs: int = 0) -> SamplingParams:
    return SamplingParams(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=seed, top_logprobs=top_logprobs)


def create_prompts(store: RunStore, t: int, model: ModelRef, seed_instructions: list[str], cfg: CreatePromptsConfig, pool: ModelPool, seed: int, exclude: frozenset[str] = frozenset()) -> list[Prompt]:
    """M_t writes new instructions from few-shot seed examples; filtered and deduplicated. With
    create_prompts.from_file the prompts come from the file instead, minus `exclude` (the
    evaluation's prompts: never train on what is evaluated)."""
    source_file = file_digest(resolve_data_path(cfg.from_file)) if cfg.from_file else None
    inputs = [model.key, *seed_instructions] + ([f"exclude:{sorted(exclude)}"] if exclude else [])
    stage = store.stage(t, "prompts", {"cfg": cfg.key(), "seed": seed, "file": source_file}, inputs)
    if stage.done():
        return [Prompt.from_dict(r) for r in stage.rows()]
    stage.begin()
    if cfg.from_file:
        return _prompts_from_file(stage, t, cfg, seed, exclude)
    rng = random.Random(seed * 1000 + t)
    keep = PromptFilter(existing=seed_instructions, similarity_threshold=cfg.similarity_threshold, min_chars=cfg.min_chars, max_chars=cfg.max_chars)
    generator = pool.generator(model, cfg.sampling.batch_size)
    requests_made, parsed = 0, 0
    raw_rows = []
    with tqdm(total=cfg.num_prompts, desc=f"iter {t}: creating prompts", unit="prompt") as bar:
        while len(keep.kept) < cfg.num_prompts and requests_made < cfg.max_requests:
            batch = min(cfg.sampling.batch_size, cfg.max_requests - requests_made)
            requests = [fewshot_request(seed_instructions, cfg.shots, rng, count=cfg.tasks_per_request) for _ in range(batch)]
            params = sampling_params(cfg.sampling, n=1, seed=seed + requests_made)
            for cands in generator.generate(requests, params):
                tasks, cut = parse_tasks(cands[0].text, truncated=cands[0].finish_reason == "length")
                keep.dropped["truncated"] += cut
                parsed += len(tasks) + cut
                for task in tasks:
                    if len(keep.kept) >= cfg.num_prompts:
                        keep.dropped["over_quota"] += 1  # well-formed or not, no longer needed
                    elif keep.offer(task):
                        bar.update()
                raw_rows.append({"output": cands[0].text, "finish_reason": cands[0].finish_reason})
            requests_made += batch
    prompts = [Prompt(id=f"it{t}-p{i:05d}", messages=[{"role": "user", "content": text}], source="created") for i, text in enumerate(keep.kept)]
    if not prompts:
        raise RuntimeError(f"iteration {t}: the model wrote no usable prompt in {requests_made} requests (dropped: {dict(keep.dropped)})")
    write_jsonl(stage.dir / "raw_outputs.jsonl", raw_rows)
    metrics = {"requests": requests_made, "tasks_parsed": parsed, "kept": len(prompts), "dropped": dict(keep.dropped)}
    stage.finish([p.to_dict() for p in prompts], metrics)
    return prompts


def _prompts_from_file(stage, t: int, cfg: CreatePromptsConfig, seed: int, exclude: frozenset[str]) -> list[Prompt]:
    in_file = load_prompts(cfg.from_file, source="file")
    available = [p for p in in_file if p.text.strip() not in exclude]
    if not available:
        raise DataError(f"{cfg.from_file}: every prompt is also an evaluation prompt; nothing left to train on")
    order = list(range(len(available)))
    random.Random(seed).shuffle(order)
    # Iteration t takes the t-th slice of one fixed shuffle, so iterations see different prompts.
    start = ((t - 1) * cfg.num_prompts) % len(available)
    chosen = [available[order[(start + i) % len(order)]] for i in range(min(cfg.num_prompts, len(available)))]
    prompts = [Prompt(id=f"it{t}-{p.id}", messages=p.messages, source=p.source) for p in chosen]
    dropped = {"evaluation_prompt": len(in_file) - len(available)} if len(in_file) > len(available) else {}
    stage.finish([p.to_dict() for p in prompts], {"requests": 0, "tasks_parsed": len(in_file), "kept": len(prompts), "dropped": dropped, "from_file": cfg.from_file})
    return prompts


def _answer_request(prompt: Prompt, control: bool) -> list[Message]:
    if not control:
        return prompt.messages
    last = prompt.messages[-1]
    return [*prompt.messages[:-1], {"role": "user", "content": render("answer_control", instruction=last["content"])}]


def remote_usage_since(pool: ModelPool, before: dict[str, dict]) -> dict:
    """{"remote": {endpoint: requests, retries, cache hits, failures, tokens}} for the calls made
    since `before`; {} when no endpoint was used."""
    deltas = {}
    for label, after in pool.remote_usage().items():
        delta = usage_delta(before.get(label, ZERO_USAGE), after)
        if delta["requests"] or delta["cache_hits"] or delta["failed"]:
            deltas[label] = delta
    return {"remote": deltas} if deltas else {}


def sample_candidates(store: RunStore, t: int, model: AnyModelRef, prompts: list[Prompt], cfg: SampleConfig, pool: ModelPool, seed: int, name: str = "candidates") -> dict[str, list[Candidate]]:
    """N samples per prompt from M_t at temperature > 0, each prompt with the short control
    instruction (answer directly, no follow-up questions)."""
    stage = store.stage(t, name, {"cfg": cfg.key(), "seed": seed}, [model.key, *[p.id + p.text for p in prompts]])
    if not stage.done():
        stage.begin()
        by_id = {p.id: p for p in prompts}
        params = sampling_params(cfg.sampling, n=cfg.n, seed=seed)

        def process(ids: list[str]) -> list[dict]:
            requests = [_answer_request(by_id[i], cfg.control_instruction) for i in ids]
            outputs = pool.generator(model, cfg.sampling.batch_size).generate(requests, replace(params, seed=chunk_seed(seed, ids)))
            return [{"id": i, "candidates": [c.to_dict() for c in cands]} for i, cands in zip(ids, outputs)]

        error_of = lambda row: first_error(c.get("error") for c in row["candidates"])
        started, usage_before = time.perf_counter(), pool.remote_usage()
        rows = stage.map_items([p.id for p in prompts], process, chunk_size=cfg.sampling.batch_size, desc=f"iter {t}: {name} ({model.label})", error_of=error_of)
        elapsed = time.perf_counter() - started
        cands = [Candidate.from_dict(c) for r in rows for c in r["candidates"]]
        tokens = sum(c.num_tokens for c in cands)
        stage.finish(rows, failed=sum(error_of(r) is not None for r in rows), metrics={
            "model": model.label,
            "prompts": len(rows),
            "candidates": len(cands),
            "mean_tokens": tokens / max(1, len(cands)),
            "truncated": sum(c.finish_reason == "length" for c in cands),
            "empty": sum(not c.text and c.finish_reason != "error" for c in cands),
            "failed": sum(c.finish_reason == "error" for c in cands),
            "tokens_per_second": tokens / elapsed if elapsed > 0 else None,
            **remote_usage_since(pool, usage_before),
        })
    return {r["id"]: [Candidate.from_dict(c) for c in r["candidates"]] for r in stage.rows()}


JudgeFactory = Callable[[AnyModelRef, JudgeConfig, int], Judge]
"""Builds the judge for a model; a factory may carry a `key` naming anything else its verdicts
depend on (e.g. demonstrations), which goes into the judging stages' keys."""


@dataclass(frozen=True)
class RubricJudgeFactory:
    """The default judge: the additive 5-point rubric, asked of the given model, optionally after
    a few EFT demonstrations."""

    pool: ModelPool
    demonstrations: tuple = ()

    @property
    def key(self) -> str:
        return content_key(list(self.demonstrations))

    def __call__(self, ref: AnyModelRef, cfg: JudgeConfig, seed: int) -> Judge:
        params = sampling_params(cfg.sampling, n=1, seed=seed)
        generator = self.pool.generator(ref, cfg.sampling.batch_size)
        return RubricJudge(generator, params, cfg.samples, cfg.max_response_chars, list(self.demonstrations), cfg.use_logprobs)


def judge_candidates(store: RunStore, t: int, judge_model: AnyModelRef, prompts: list[Prompt], candidates: dict[str, list[Candidate]], cfg: JudgeConfig, make_judge: JudgeFactory, pool: ModelPool, seed: int, name: str = "judgments") -> dict[str, list[Judgment]]:
    """Every candidate scored by the judge (by default judge_model with the 5-point rubric);
    the judge is only built, and its model only loaded, if the stage has work to do. A candidate
    that failed (no answer from a remote backend) is not sent to the judge: its judgment is
    None with the reason."""
    inputs = [judge_model.key, getattr(make_judge, "key", ""), *[p.id + p.text + "".join(c.text for c in candidates[p.id]) for p in prompts]]
    stage = store.stage(t, name, {"cfg": cfg.key_without(*cfg.PAIRWISE_ONLY), "seed": seed}, inputs)
    if not stage.done():
        stage.begin()
        by_id = {p.id: p for p in prompts}
        judge = make_judge(judge_model, cfg, seed)

        def process(ids: list[str]) -> list[dict]:
            usable = [(i, k) for i in ids for k, c in enumerate(candidates[i]) if c.finish_reason != "error"]
            verdicts = judge.judge([JudgeItem(prompt=by_id[i].messages, response=candidates[i][k].text) for i, k in usable]) if usable else []
            by_key = dict(zip(usable, verdicts))
            unjudged = lambda c: Judgment(score=None, raw=[], parsed=False, error=f"candidate failed: {c.error}")
            return [{"id": i, "judgments": [(by_key.get((i, k)) or unjudged(c)).to_dict() for k, c in enumerate(candidates[i])]} for i in ids]

        # A judgment of a failed candidate is not the judge's failure: retrying the judge cannot help.
        error_of = lambda row: first_error(j["error"] for j in row["judgments"] if not (j["error"] or "").startswith("candidate failed"))
        usage_before = pool.remote_usage()
        rows = stage.map_items([p.id for p in prompts], process, chunk_size=max(1, cfg.sampling.batch_size // 2), desc=f"iter {t}: {name} ({judge_model.label})", error_of=error_of)
        metrics = judgment_metrics([Judgment.from_dict(j) for r in rows for j in r["judgments"]])
        stage.finish(rows, {"judge": judge_model.label, **metrics, **remote_usage_since(pool, usage_before)}, failed=sum(error_of(r) is not None for r in rows))
    return {r["id"]: [Judgment.from_dict(j) for j in r["judgments"]] for r in stage.rows()}


def judgment_metrics(judgments: list[Judgment]) -> dict:
    scores = [j.score for j in judgments if j.score is not None]
    histogram = Counter(str(round(s)) for s in scores)
    return {
        "judged": len(judgments),
        "parsed": len(scores),
        "parse_rate": len(scores) / max(1, len(judgments)),
        "failed": sum(j.error is not None for j in judgments),
        "unparsed_samples": dict(Counter(reason for j in judgments for reason in j.unparsed)),
        "mean_score": sum(scores) / len(scores) if scores else None,
        "score_histogram": {str(k): histogram.get(str(k), 0) for k in range(6)},
    }


def train_dpo_stage(store: RunStore, t: int, model: ModelRef, pairs: list[Pair], cfg: DPOConfig, pool: ModelPool, seed: int) -> ModelRef:
    """M_{t+1} = DPO(M_t, pairs) with reference M_t; the checkpoint lands in iter_t/dpo/model."""
    stage = store.stage(t, "dpo", {"cfg": cfg.key(), "seed": seed}, [model.key, *[str(p.to_dict()) for p in pairs]])
    out = ModelRef(label=f"M{t + 1}", path=stage.dir / "model", key=stage.key)
    if stage.done():
        return out
    if not pairs:
        pairs_metrics = store.root / f"iter_{t}/pairs/metrics.json"
        dropped = store.metrics(t, "pairs").get("dropped") if pairs_metrics.exists() else None
        raise NoPairsError(f"iteration {t}: no preference pairs to train on (dropped: {dropped or 'none'}; see {pairs_metrics})")
    stage.begin()
    loaded = pool.fresh(model)
    started = time.perf_counter()
    checkpointer = TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes)
    trained, history, stats = train_dpo(loaded, pairs, cfg, seed, stage.resumable_file("reference_logps.json"), checkpointer)
    elapsed = time.perf_counter() - started
    save_checkpoint(trained, loaded, out.path)
    final = history[-1]
    stage.finish(history, {
        **stats,
        "steps": len(history),
        "final_loss": final["loss"],
        "final_accuracy": final["rewards/accuracy"],
        "final_margin": final["rewards/margins"],
        "seconds": elapsed,
        "pairs_per_second": len(pairs) * cfg.epochs / elapsed,
    })
    return out


def train_sft_stage(store: RunStore, model: ModelRef, conversations: list[list[Message]], cfg: SFTConfig, pool: ModelPool, seed: int) -> ModelRef:
    """M1 = SFT(M0) on the IFT (+ EFT) seed; iteration 0 of the run."""
    stage = store.stage(0, "sft", {"cfg": cfg.key(), "seed": seed}, [model.key, *[str(c) for c in conversations]])
    out = ModelRef(label="M1", path=stage.dir / "model", key=stage.key)
    if stage.done():
        return out
    stage.begin()
    loaded = pool.fresh(model)
    started = time.perf_counter()
    trained, history, stats = train_sft(loaded, conversations, cfg, seed, TrainCheckpointer(stage.train_state_path, cfg.checkpoint_minutes))
    save_checkpoint(trained, loaded, out.path)
    stage.finish(history, {**stats, "steps": len(history), "final_loss": history[-1]["loss"], "seconds": time.perf_counter() - started})
    return out


def checkpoint_exists(ref: ModelRef) -> bool:
    return (Path(ref.path) / "config.json").exists()
