"""What every stage shares: where it lands (StageContext), the skeleton of a stage that maps over
items (run_items), the first error of a failed row, and the remote (HTTP) usage a stage caused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from autoalign.generation.base import ZERO_USAGE, usage_delta
from autoalign.runtime.pool import AnyModelRef, ModelPool
from autoalign.store import RunStore, Stage
from autoalign.types import Prompt

Row = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class StageContext:
    """The run as a stage sees it: the store and iteration its output lands in, the models it may
    load, and the run's seed. Loops make one per stage (RunContext.at); `autoalign eval` makes
    its own."""

    store: RunStore
    t: int
    pool: ModelPool
    seed: int

    def stage(
        self, name: str, config: Any, inputs: list[str], templates: tuple[str, ...] = (), kind: str | None = None
    ) -> Stage:
        return self.store.stage(self.t, name, config, inputs, templates, kind)

    def at_iteration(self, t: int) -> StageContext:
        """The same run and store, landing in another iteration."""
        return replace(self, t=t)


def run_items(
    at: StageContext,
    stage: Stage,
    prompts: list[Prompt],
    process: Callable[[list[str]], list[Row]],
    summarize: Callable[[list[Row], float], dict],
    error_of: Callable[[Row], str | None],
    *,
    chunk_size: int,
    model: AnyModelRef,
    requests_per_item: float = 1.0,
    concurrent: bool = True,
) -> list[Row]:
    """The skeleton of a stage that maps `process` over its prompts' ids: a finished stage is read
    back; otherwise outputs of another version are cleared, items run in resumable chunks
    (Stage.map_items; error_of(row) names a failed row, which is retried), and the rows are
    recorded with summarize(rows, seconds) plus the remote usage the stage caused. model is the
    one at work (named in the progress bar); on a server, chunks of chunk_size items, each
    making requests_per_item requests, run several at once (ModelPool.in_flight), unless
    concurrent is False (process is not safe to call from two threads). Returns the stage's rows."""
    if stage.done():
        return stage.rows()
    stage.begin()
    started, usage_before = time.perf_counter(), at.pool.remote_usage()
    desc = f"iter {at.t}: {stage.rel.split('/')[-1]} ({model.label})"
    ids = [p.id for p in prompts]
    in_flight = at.pool.in_flight(model, round(chunk_size * requests_per_item)) if concurrent else 1
    rows = stage.map_items(ids, process, chunk_size=chunk_size, desc=desc, error_of=error_of, in_flight=in_flight)
    metrics = summarize(rows, time.perf_counter() - started)
    stage.finish(rows, {**metrics, **remote_usage_since(at.pool, usage_before)})
    return rows


def candidates_per_prompt(prompts: list[Prompt], candidates: dict[str, list]) -> float:
    return sum(len(candidates[p.id]) for p in prompts) / max(1, len(prompts))


def once(build: Callable[[], T]) -> Callable[[], T]:
    """build() on the first call, then the same object; safe when chunks run in threads."""
    lock, made = threading.Lock(), []

    def get() -> T:
        with lock:
            if not made:
                made.append(build())
        return made[0]

    return get


def first_error(errors) -> str | None:
    return next((e for e in errors if e), None)


def remote_usage_since(pool: ModelPool, before: dict[str, dict]) -> dict:
    """{"remote": {endpoint: requests, retries, cache hits, failures, tokens}} for the calls made
    since `before`; {} when no endpoint was used."""
    deltas = {}
    for label, after in pool.remote_usage().items():
        delta = usage_delta(before.get(label, ZERO_USAGE), after)
        if delta["requests"] or delta["cache_hits"] or delta["failed"]:
            deltas[label] = delta
    return {"remote": deltas} if deltas else {}
