"""Durable cache of remote responses, keyed by a hash of the request's content.

SQLite, one row per answered request, committed as soon as it arrives: a run that crashes or is
stopped and started again never pays for a request twice. It also keeps the running count of HTTP
requests sent, so a request budget holds across resumes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


def request_key(url: str, body: dict[str, Any]) -> str:
    blob = json.dumps([url, body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, json.dumps(response)))

    def take_request(self, budget: int | None) -> bool:
        """Count one HTTP request against the budget; False (and nothing counted) when spent."""
        with self._lock, self._db:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'requests'").fetchone()
            used = row[0] if row else 0
            if budget is not None and used >= budget:
                return False
            self._db.execute("INSERT OR REPLACE INTO counters VALUES ('requests', ?)", (used + 1,))
            return True

    def close(self) -> None:
        with self._lock:
            self._db.close()
