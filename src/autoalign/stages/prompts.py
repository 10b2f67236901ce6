"""Prompt creation: M_t writes new instructions from few-shot seed examples (self-instruct
style, as in Self-Rewarding LMs section 2.2), or the prompts come from a file."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from autoalign.config import CreatePromptsConfig
from autoalign.data import load_prompts, resolve_data_path
from autoalign.io import DataError, write_jsonl
from autoalign.runtime.pool import ModelRef
from autoalign.generation.base import sampling_params
from autoalign.stages.common import StageContext
from autoalign.store import Stage, file_digest
from autoalign.synth.instructions import PromptFilter, fewshot_request, parse_tasks
from autoalign.types import Prompt


def create_prompts(
    at: StageContext,
    model: ModelRef,
    seed_instructions: list[str],
    cfg: CreatePromptsConfig,
    *,
    exclude: frozenset[str] = frozenset(),
) -> list[Prompt]:
    """M_t writes new instructions from few-shot seed examples; filtered and deduplicated. With
    create_prompts.from_file the prompts come from the file instead, minus `exclude` (the
    evaluation's prompts: never train on what is evaluated)."""
    source_file = file_digest(resolve_data_path(cfg.from_file)) if cfg.from_file else None
    inputs = [model.key, *seed_instructions] + ([f"exclude:{sorted(exclude)}"] if exclude else [])
    templates = () if cfg.from_file else ("create_instructions",)
    stage = at.stage("prompts", {"cfg": cfg.key(), "seed": at.seed, "file": source_file}, inputs, templates)
    if cfg.from_file:
        build = lambda: _prompts_from_file(at.t, cfg, at.seed, exclude)
    else:
        build = lambda: _written_prompts(at, stage, model, seed_instructions, cfg)
    return [Prompt.from_dict(r) for r in stage.ensure(build).rows()]


def _written_prompts(
    at: StageContext, stage: Stage, model: ModelRef, seed_instructions: list[str], cfg: CreatePromptsConfig
) -> tuple[list[dict], dict]:
    t, seed = at.t, at.seed
    rng = random.Random(seed * 1000 + t)
    keep = PromptFilter(
        existing=seed_instructions,
        similarity_threshold=cfg.similarity_threshold,
        min_chars=cfg.min_chars,
        max_chars=cfg.max_chars,
    )
    generator = at.pool.generator(model, cfg.sampling.batch_size)

    def batches():
        """(requests, params) of each batch, drawn in order whatever runs ahead (same prompts)."""
        made = 0
        while made < cfg.max_requests:
            size = min(cfg.sampling.batch_size, cfg.max_requests - made)
            requests = [
                fewshot_request(seed_instructions, cfg.shots, rng, count=cfg.tasks_per_request) for _ in range(size)
            ]
            yield requests, sampling_params(cfg.sampling, n=1, seed=seed + made)
            made += size

    requests_made, parsed = 0, 0
    raw_rows = []
    with tqdm(total=cfg.num_prompts, desc=f"iter {t}: creating prompts", unit="prompt") as bar:
        for requests, outputs in _ahead(
            generator,
            batches(),
            at.pool.in_flight(model, cfg.sampling.batch_size),
            lambda: cfg.num_prompts - len(keep.kept),
        ):
            for cands in outputs:
                tasks, cut = parse_tasks(cands[0].text, truncated=cands[0].finish_reason == "length")
                keep.dropped["truncated"] += cut
                parsed += len(tasks) + cut
                for task in tasks:
                    if len(keep.kept) >= cfg.num_prompts:
                        keep.dropped["over_quota"] += 1  # well-formed or not, no longer needed
                    elif keep.offer(task):
                        bar.update()
                raw_rows.append({"output": cands[0].text, "finish_reason": cands[0].finish_reason})
            requests_made += len(requests)
            if len(keep.kept) >= cfg.num_prompts:
                break
    prompts = [
        Prompt(id=f"it{t}-p{i:05d}", messages=[{"role": "user", "content": text}], source="created")
        for i, text in enumerate(keep.kept)
    ]
    if not prompts:
        raise RuntimeError(
            f"iteration {t}: the model wrote no usable prompt in {requests_made} requests (dropped: {dict(keep.dropped)})"
        )
    write_jsonl(stage.dir / "raw_outputs.jsonl", raw_rows)
    metrics = {"requests": requests_made, "tasks_parsed": parsed, "kept": len(prompts), "dropped": dict(keep.dropped)}
    return [p.to_dict() for p in prompts], metrics


def _ahead(generator, batches, in_flight: int, still_needed: Callable[[], int]):
    """Yield (requests, outputs) for each batch, in order. With in_flight > 1 (a server) the next
    batches are already generating while the caller reads this one, until the batches running
    are expected to yield the still_needed tasks (at the rate kept so far): more would be thrown
    away. The caller stops when it has enough; a batch still running then is waited for."""
    if in_flight <= 1:
        for requests, params in batches:
            yield requests, generator.generate(requests, params)
        return
    with ThreadPoolExecutor(max_workers=in_flight) as executor:
        running: deque = deque()
        needed_at_start, read = still_needed(), 0
        for requests, params in batches:
            running.append((requests, executor.submit(generator.generate, requests, params)))
            if len(running) < in_flight:
                continue
            requests, future = running.popleft()
            yield requests, future.result()
            read += len(requests)
            per_request = (needed_at_start - still_needed()) / read
            if per_request * sum(len(r) for r, _ in running) >= still_needed():
                break
        while running:
            requests, future = running.popleft()
            yield requests, future.result()


def _prompts_from_file(t: int, cfg: CreatePromptsConfig, seed: int, exclude: frozenset[str]) -> tuple[list[dict], dict]:
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
    metrics = {
        "requests": 0,
        "tasks_parsed": len(in_file),
        "kept": len(prompts),
        "dropped": dropped,
        "from_file": cfg.from_file,
    }
    return [p.to_dict() for p in prompts], metrics
