"""The human review queue: items the critic could not judge with confidence wait here for a person.

One SQLite file in the run directory (`runs/<name>/review.sqlite`). An item holds the prompt, the
responses, the critic's critique and scores, and why it was escalated; a label holds a person's
answer: a preference (A / B / tie), a score, an edited response, or a skip, with an optional note,
who gave it and when. Labels become preference pairs (`source: human`) like any other feedback.

Durability: every write is one SQLite transaction in WAL mode, so a process killed mid-write
leaves the queue as it was before or after that write, never in between. Adding an item twice
is a no-op (items are keyed by content) and a person's new answer to an item replaces their old
one, so replaying a batch of writes after a crash neither loses nor duplicates anything.

Teams that label elsewhere move the queue as JSONL: `export_items` writes the pending items,
`import_labels` reads labels back (errors name the file, line and field).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autoalign.io import DataError, iter_jsonl, require_field, write_jsonl
from autoalign.types import Message, Pair

QUEUE_FILE = "review.sqlite"
LABEL_KINDS = ("preference", "score", "edit", "skip")
PREFERENCES = ("A", "B", "tie")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    item_id TEXT NOT NULL REFERENCES items(item_id),
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (item_id, who)
);
"""


@dataclass(frozen=True)
class ReviewItem:
    """What a person sees: the prompt, one response (rubric) or two (pairwise, A and B), the
    critic's critique and scores, why the item was escalated and the uncertainty signals."""

    prompt_id: str
    prompt: list[Message]
    responses: list[str]
    critique: str = ""
    scores: list[float | None] = field(default_factory=list)
    reason: str = ""
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def item_id(self) -> str:
        """A digest of the prompt and the responses: the same question is queued once."""
        content = json.dumps([self.prompt, self.responses], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HumanLabel:
    """A person's answer to an item. value: "A" / "B" / "tie" for a preference, the number for
    a score, {"response": index, "text": ...} for an edit (the rewritten response), None for a skip."""

    item_id: str
    kind: str
    value: Any
    who: str
    note: str = ""
    at: str = ""

    def __post_init__(self) -> None:
        problem = label_problem(self.kind, self.value)
        if problem:
            raise ValueError(problem)


def label_problem(kind: str, value: Any) -> str | None:
    """Why (kind, value) is not a valid answer, or None."""
    if kind not in LABEL_KINDS:
        return f"kind must be one of {', '.join(LABEL_KINDS)}, got {kind!r}"
    if kind == "preference" and value not in PREFERENCES:
        return f"a preference must be one of {', '.join(PREFERENCES)}, got {value!r}"
    if kind == "score" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"a score must be a number, got {value!r}"
    if kind == "edit" and not (
        isinstance(value, dict) and isinstance(value.get("text"), str) and isinstance(value.get("response"), int)
    ):
        return 'an edit must be {"response": <index>, "text": <the rewritten response>}'
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ReviewQueue:
    """The queue in one SQLite file; open it with `ReviewQueue(run_dir / QUEUE_FILE)`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, shared by the web app's worker threads in turn (check_same_thread=False):
        # the lock keeps a transaction from interleaving with another thread's statements.
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed label survives a power cut too
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, items: Iterable[ReviewItem]) -> int:
        """Queue the items (one transaction); returns how many were new."""
        rows = [(item.item_id, _now(), json.dumps(asdict(item), ensure_ascii=False)) for item in items]
        with self._transaction():
            before = self._count("items")
            self._db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?)", rows)
            return self._count("items") - before

    def answer(self, label: HumanLabel) -> None:
        """Store a person's answer; their earlier answer to the same item is replaced."""
        with self._transaction():
            if not self._db.execute("SELECT 1 FROM items WHERE item_id = ?", (label.item_id,)).fetchone():
                raise KeyError(f"no review item {label.item_id} in {self.path}")
            self._store(label)

    def items(self, pending_only: bool = False, limit: int = -1) -> list[ReviewItem]:
        """Items in the order they were queued; pending_only: those nobody has answered yet;
        at most limit of them (-1: all)."""
        query = "SELECT body FROM items"
        if pending_only:
            query += " WHERE item_id NOT IN (SELECT item_id FROM labels)"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        return [ReviewItem(**json.loads(body)) for (body,) in rows]

    def labels(self) -> list[HumanLabel]:
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id, kind, value, who, note, at FROM labels ORDER BY at, rowid"
            ).fetchall()
        return [HumanLabel(i, kind, json.loads(value), who, note, at) for i, kind, value, who, note, at in rows]

    def counts(self) -> dict[str, int]:
        """Progress: items queued, answered (by anyone, skips included) and still pending."""
        with self._lock:
            total = self._count("items")
            answered = self._db.execute("SELECT COUNT(DISTINCT item_id) FROM labels").fetchone()[0]
        return {"items": total, "answered": answered, "pending": total - answered}

    def export_items(self, path: str | Path, pending_only: bool = True) -> int:
        """Write the items as JSONL (one object per line, with its item_id) for labelling elsewhere."""
        return write_jsonl(path, ({"item_id": item.item_id, **asdict(item)} for item in self.items(pending_only)))

    def export_labels(self, path: str | Path) -> int:
        """Write every answer as JSONL (the format import_labels reads)."""
        return write_jsonl(path, (asdict(label) for label in self.labels()))

    def import_labels(self, path: str | Path, who: str = "import") -> int:
        """Read labels ({item_id, kind, value, [who], [note], [at]} per line), all checked before
        any is stored, then store them in one transaction. Returns how many were read."""
        known = {item.item_id for item in self.items()}
        labels = []
        for line_no, row in iter_jsonl(path):
            item_id = require_field(path, line_no, row, "item_id", str)
            if item_id not in known:
                raise DataError(f"{path}:{line_no}: field 'item_id': no review item {item_id} in {self.path}")
            kind = require_field(path, line_no, row, "kind", str)
            problem = label_problem(kind, row.get("value"))
            if problem:
                raise DataError(
                    f"{path}:{line_no}: field '{'kind' if kind not in LABEL_KINDS else 'value'}': {problem}"
                )
            note = row.get("note", "")
            if not isinstance(note, str):
                raise DataError(f"{path}:{line_no}: field 'note' must be str, got {type(note).__name__}")
            labels.append(
                HumanLabel(item_id, kind, row.get("value"), str(row.get("who") or who), note, row.get("at", ""))
            )
        with self._transaction():
            for label in labels:
                self._store(label)
        return len(labels)

    def _count(self, table: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def _store(self, label: HumanLabel) -> None:
        """Inside a transaction: the label, replacing this person's earlier answer to the item."""
        self._db.execute(
            "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?)",
            (label.item_id, label.who, label.at or _now(), label.kind, json.dumps(label.value), label.note),
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, all or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def label_key(label: HumanLabel) -> str:
    """Names one answer: the item, who gave it and when (a changed answer is a new one)."""
    return f"{label.item_id}/{label.who}/{label.at}"


def human_pairs(queue: ReviewQueue, weight: float = 1.0, labels: list[HumanLabel] | None = None) -> list[Pair]:
    """Preference pairs from the people's answers (all of them, or `labels`; source "human"):
    - a preference for A or B over a two-response item: the preferred vs the other (ties: none);
    - an edit: the rewritten response vs the response it rewrote;
    - scores: per prompt, the best- vs the worst-scored response when they differ.
    With several people on one item, each answer counts as its own pair."""
    items = {item.item_id: item for item in queue.items()}
    pairs: list[Pair] = []
    scored: dict[str, list[tuple[float, str, ReviewItem]]] = {}
    for label in queue.labels() if labels is None else labels:
        item = items[label.item_id]
        if label.kind == "preference" and label.value != "tie" and len(item.responses) == 2:
            chosen = 0 if label.value == "A" else 1
            pairs.append(
                Pair(
                    item.prompt_id,
                    item.prompt,
                    item.responses[chosen],
                    item.responses[1 - chosen],
                    source="human",
                    weight=weight,
                )
            )
        elif label.kind == "edit" and 0 <= label.value["response"] < len(item.responses):
            original = item.responses[label.value["response"]]
            if label.value["text"].strip() and label.value["text"] != original:
                pairs.append(
                    Pair(item.prompt_id, item.prompt, label.value["text"], original, source="human", weight=weight)
                )
        elif label.kind == "score" and len(item.responses) == 1:
            scored.setdefault(item.prompt_id, []).append((float(label.value), item.responses[0], item))
    for prompt_id, answers in scored.items():
        best, worst = max(answers, key=lambda a: a[0]), min(answers, key=lambda a: a[0])
        if best[0] > worst[0] and best[1] != worst[1]:
            pairs.append(Pair(prompt_id, best[2].prompt, best[1], worst[1], best[0], worst[0], "human", weight))
    return pairs
