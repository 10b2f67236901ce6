"""The run store: `runs/<name>/iter_<t>/<stage>/`, one directory per stage.

A stage's key is a hash of its config and its inputs' keys. A finished stage is recorded in
`manifest.json` with its key; re-running a recipe skips any stage whose recorded key matches,
and since keys chain through inputs, changing one stage's config invalidates that stage and
everything after it, nothing before. Within a stage, finished items are appended to a partial
file named by the key, so a crash loses at most the chunk in flight; training stages keep their
mid-training checkpoint and reference log-probs in files named by the key too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from autoalign.io import append_jsonl, read_json, read_jsonl, read_partial_jsonl, write_json, write_jsonl


def content_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.root / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            return read_json(self.manifest_path)
        return {"stages": {}}

    def stage(self, iteration: int, name: str, config: Any, inputs: Sequence[str]) -> Stage:
        rel = f"iter_{iteration}/{name}"
        return Stage(store=self, rel=rel, dir=self.root / rel, key=content_key(name, config, list(inputs)))

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

    @property
    def data_path(self) -> Path:
        return self.dir / "data.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.json"

    def done(self) -> bool:
        entry = self.store.manifest()["stages"].get(self.rel)
        return entry is not None and entry["key"] == self.key and self.metrics_path.exists()

    def begin(self) -> None:
        """Clear outputs of a previous, different version of this stage; keep what an interrupted
        run of this same version left to resume from (names carrying the key)."""
        if self.dir.exists():
            for child in self.dir.iterdir():
                if self.key in child.name:
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)

    def finish(self, rows: list[dict[str, Any]] | None, metrics: dict[str, Any]) -> None:
        if rows is not None:
            write_jsonl(self.data_path, rows)
        write_json(self.metrics_path, metrics)
        self.partial_path.unlink(missing_ok=True)
        shutil.rmtree(self.train_state_path, ignore_errors=True)
        self.store.record(self, {"rows": len(rows) if rows is not None else None})

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
    ) -> list[dict[str, Any]]:
        """Run `process` over ids in chunks, keeping finished rows (each with an "id") in the
        partial file; items finished by an earlier, interrupted run are not redone."""
        finished = {row["id"]: row for row in read_partial_jsonl(self.partial_path)}
        todo = [i for i in ids if i not in finished]
        with tqdm(total=len(ids), initial=len(ids) - len(todo), desc=desc, unit="item") as bar:
            for start in range(0, len(todo), chunk_size):
                rows = process(todo[start : start + chunk_size])
                append_jsonl(self.partial_path, rows)
                finished.update((row["id"], row) for row in rows)
                bar.update(len(rows))
        return [finished[i] for i in ids]
