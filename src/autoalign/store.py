"""The run store: `runs/<name>/iter_<t>/<stage>/`, one directory per stage.

A stage's key is a hash of its config and its inputs' keys. A finished stage is recorded in
`manifest.json` with its key; re-running a recipe skips any stage whose recorded key matches,
and since keys chain through inputs, changing one stage's config invalidates that stage and
everything after it, nothing before. Within a stage, items run in fixed chunks and each finished
chunk is appended to a partial file named by the key as one line, so a crash loses at most the
chunk in flight, and a resumed stage redoes exactly the chunks an uninterrupted run would have
done, with the same inputs (so the same samples). Training stages keep their mid-training
checkpoint and reference log-probs in files named by the key too.

Failed items (a remote backend gave no answer) are never finished: a resumed stage retries them;
a stage where every item failed is not recorded (StageFailedError); one with some failures is
recorded with their count, and `retry_failed` makes a later run retry them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from autoalign.io import append_record, read_json, read_jsonl, read_records, remove_tree, write_json, write_jsonl
from autoalign.prompts import template_digest


def content_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class StageFailedError(RuntimeError):
    """Every item of a stage failed (e.g. the endpoint is down): nothing is recorded, and the
    next run retries the stage."""


class RunStore:
    """retry_failed: recorded stages that have failed items run again for those items only."""

    def __init__(self, root: str | Path, retry_failed: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.root / "manifest.json"
        self.retry_failed = retry_failed

    def child(self, name: str) -> RunStore:
        """A store under this one (a branch of a comparison), with the same settings."""
        return RunStore(self.root / name, self.retry_failed)

    def manifest(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            return read_json(self.manifest_path)
        return {"stages": {}}

    def stage(
        self,
        iteration: int,
        name: str,
        config: Any,
        inputs: Sequence[str],
        templates: Sequence[str] = (),
        kind: str | None = None,
    ) -> Stage:
        """templates: the prompt templates the stage sends (prompts/*.txt); their text is part of
        the key, so editing one re-runs what it produced. kind: what the stage is (samples,
        judgments, eval, ...; by default its name), recorded in the manifest for the readers of a
        run (summary, report), and not part of the key."""
        rel = f"iter_{iteration}/{name}"
        parts = [name, config, list(inputs)] + ([template_digest(*templates)] if templates else [])
        return Stage(store=self, rel=rel, dir=self.root / rel, key=content_key(*parts), kind=kind or name)

    def metrics(self, iteration: int, name: str) -> dict[str, Any]:
        """A finished stage's metrics, read without knowing its key."""
        return read_json(self.root / f"iter_{iteration}/{name}/metrics.json")

    def record(self, stage: Stage, summary: dict[str, Any]) -> None:
        manifest = self.manifest()
        manifest["stages"][stage.rel] = {
            "key": stage.key,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **summary,
        }
        write_json(self.manifest_path, manifest)


@dataclass
class Stage:
    store: RunStore
    rel: str
    dir: Path
    key: str
    kind: str = ""
    failed_items: int = 0
    """How many rows map_items ended with a failure; what finish() records by default."""

    @property
    def data_path(self) -> Path:
        return self.dir / "data.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.json"

    def _entry(self) -> dict[str, Any] | None:
        entry = self.store.manifest()["stages"].get(self.rel)
        return entry if entry is not None and entry["key"] == self.key else None

    def done(self) -> bool:
        entry = self._entry()
        if entry is None or not self.metrics_path.exists():
            return False
        return not (self.store.retry_failed and entry.get("failed"))

    def begin(self) -> None:
        """Clear outputs of a previous, different version of this stage; keep what an interrupted
        run of this same version left to resume from (names carrying the key). When a recorded
        stage runs again to retry its failed items, its finished rows are kept as a chunk."""
        entry = self._entry()
        if entry is not None and entry.get("failed") and self.data_path.exists() and not self.partial_path.exists():
            rows = read_jsonl(self.data_path)
            append_record(self.partial_path, {"ids": [r.get("id") for r in rows], "rows": rows})
        if self.dir.exists():
            for child in self.dir.iterdir():
                if self.key in child.name:
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)

    def finish(self, rows: list[dict[str, Any]] | None, metrics: dict[str, Any], failed: int | None = None) -> None:
        """failed: how many rows are recorded without an answer (retried on request); by default
        the count map_items found."""
        failed = self.failed_items if failed is None else failed
        if rows is not None:
            write_jsonl(self.data_path, rows)
        write_json(self.metrics_path, metrics)
        self.partial_path.unlink(missing_ok=True)
        for checkpoint in self.dir.glob(f"{self.train_state_path.name}*"):  # with its .old sibling, if any
            remove_tree(checkpoint)
        self.store.record(self, {"kind": self.kind, "rows": len(rows) if rows is not None else None, "failed": failed})

    def ensure(self, build: Callable[[], tuple[list[dict[str, Any]] | None, dict[str, Any]]]) -> Stage:
        """The skeleton of a stage computed in one go: `build` -> (rows or None, metrics) runs only
        when this version of the stage is not recorded yet. Returns the stage, to read from."""
        if not self.done():
            self.begin()
            rows, metrics = build()
            self.finish(rows, metrics)
        return self

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.data_path)

    def metrics(self) -> dict[str, Any]:
        return read_json(self.metrics_path)

    @property
    def partial_path(self) -> Path:
        return self.dir / f"partial-{self.key}.jsonl"

    @property
    def train_state_path(self) -> Path:
        """Mid-training checkpoint of a training stage; removed when the stage finishes."""
        return self.dir / f"train_state-{self.key}"

    def resumable_file(self, name: str) -> Path:
        """A file this version of the stage keeps across an interrupted run (e.g. cached
        reference log-probs): `name-<key>.<suffix>`."""
        stem, dot, suffix = name.partition(".")
        return self.dir / f"{stem}-{self.key}{dot}{suffix}"

    def map_items(
        self,
        ids: list[str],
        process: Callable[[list[str]], list[dict[str, Any]]],
        chunk_size: int,
        desc: str,
        error_of: Callable[[dict[str, Any]], str | None] = lambda row: None,
        in_flight: int = 1,
    ) -> list[dict[str, Any]]:
        """Run `process` over ids in fixed chunks (ids[0:c], ids[c:2c], ...), appending each
        finished chunk's rows (each with an "id") to the partial file. Rows from an earlier,
        interrupted run are kept, except failed ones (error_of(row) is their error), which are
        processed again. in_flight > 1 runs that many chunks at once in threads, for a generator
        that serves concurrent calls (a server never waits for a chunk's slowest answer); chunks
        are recorded as they finish, and their rows put back in id order. Raises
        StageFailedError when every item failed."""
        finished: dict[str, dict[str, Any]] = {}
        for record in read_records(self.partial_path):
            finished.update((row["id"], row) for row in record["rows"])
        todo = {i for i in ids if i not in finished or error_of(finished[i]) is not None}
        chunks = [[i for i in ids[s : s + chunk_size] if i in todo] for s in range(0, len(ids), chunk_size)]

        def record(chunk: list[str], rows: list[dict[str, Any]]) -> None:
            append_record(self.partial_path, {"ids": chunk, "rows": rows})
            finished.update((row["id"], row) for row in rows)
            bar.update(len(rows))

        with tqdm(total=len(ids), initial=len(ids) - len(todo), desc=desc, unit="item") as bar:
            if in_flight <= 1:
                for chunk in filter(None, chunks):
                    record(chunk, process(chunk))
            else:
                _map_concurrently(process, list(filter(None, chunks)), in_flight, record)
        rows = [finished[i] for i in ids]
        errors = [e for e in map(error_of, rows) if e is not None]
        if rows and len(errors) == len(rows):
            raise StageFailedError(
                f"{self.rel}: all {len(rows)} items failed ({desc}); the first error: {errors[0]}. "
                "Nothing was recorded: run the same command again to retry."
            )
        self.failed_items = len(errors)
        return rows


def _map_concurrently(process, chunks: list[list[str]], in_flight: int, record) -> None:
    """process(chunk) for every chunk, in_flight at a time, record(chunk, rows) in the calling
    thread as each finishes. A chunk that raises stops new submissions; the ones running are
    still recorded before the error propagates, so no finished work is lost."""
    waiting = iter(chunks)
    with ThreadPoolExecutor(max_workers=in_flight) as executor:
        running = {executor.submit(process, c): c for c in itertools.islice(waiting, in_flight)}
        error: BaseException | None = None
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                if future.exception() is not None:
                    error = error or future.exception()
                else:
                    record(chunk, future.result())
            while error is None and len(running) < in_flight and (following := next(waiting, None)) is not None:
                running[executor.submit(process, following)] = following
        if error is not None:
            raise error


@dataclass(frozen=True)
class StageRecord:
    """A finished stage as the manifest lists it; what the summary and the report read."""

    iteration: int
    name: str
    kind: str
    dir: Path

    def metrics(self) -> dict[str, Any]:
        return read_json(self.dir / "metrics.json")

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.dir / "data.jsonl") if (self.dir / "data.jsonl").exists() else []


def recorded_stages(root: str | Path, iteration: int | None = None, kind: str | None = None) -> list[StageRecord]:
    """The finished stages of a run store (in the order they were first recorded), optionally of
    one iteration and one kind."""
    root = Path(root)
    manifest = root / "manifest.json"
    found = []
    for rel, entry in (read_json(manifest)["stages"] if manifest.exists() else {}).items():
        folder, _, name = rel.partition("/")
        record = StageRecord(
            int(folder.removeprefix("iter_")), name, entry.get("kind") or _kind_of_unlabelled(name), root / rel
        )
        if (iteration is None or record.iteration == iteration) and (kind is None or record.kind == kind):
            if (record.dir / "metrics.json").exists():
                found.append(record)
    return found


def _kind_of_unlabelled(name: str) -> str:
    """The kind of a stage recorded before manifests named kinds, from its name."""
    prefixes = [
        ("pairs_", "source_pairs"),
        ("ifeval_answers_", "ifeval_answers"),
        ("eval_answers_", "answers"),
        ("eval_judgments_", "eval_judgments"),
        ("rm_judgments_", "rm_judgments"),
        ("ifeval_", "ifeval"),
        ("reward_modeling_", "reward_modeling"),
        ("h2h_", "head_to_head"),
    ]
    named = {"candidates": "samples", "teacher_answers": "samples", "gold_samples": "samples"}
    named |= {"teacher_judgments": "judgments", "eval_h2h": "head_to_head"}
    return named.get(name) or next((kind for prefix, kind in prefixes if name.startswith(prefix)), name)
