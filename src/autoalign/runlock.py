"""One writer per run directory: `runs/<name>/run.lock`.

Two `autoalign run` processes on the same directory would interleave manifest updates and
partial files. The first takes an exclusive `flock` on `run.lock` and writes its PID, host and
command into it; the kernel releases the lock when that process ends, however it ends (kill -9
included), so a lock left behind by a dead run is stale by construction and the next run takes
it over with a notice naming the previous owner. A second run while the owner lives stops with
RunLockedError naming the owner.

Some network filesystems do not share flocks between hosts, so a lock left by a run on another
host is not taken over: the message says to delete it if that run is over.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOCK_FILE = "run.lock"


class RunLockedError(RuntimeError):
    """Another live process owns the run directory."""


def describe_owner(owner: dict[str, Any]) -> str:
    since = f" since {owner['started']}" if owner.get("started") else ""
    command = f" ({owner['command']})" if owner.get("command") else ""
    return f"PID {owner.get('pid', '?')} on {owner.get('host', '?')}{since}{command}"


class RunLock:
    """Held for the whole run: `with RunLock(run_dir, log): ...`. Creates run_dir (the first
    write of a run, so take the lock only after everything is validated)."""

    def __init__(self, run_dir: str | Path, log: Callable[[str], None] = print):
        self.path = Path(run_dir) / LOCK_FILE
        self.log = log
        self._fd: int | None = None

    def read_owner(self) -> dict[str, Any]:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent}: another run is writing here: {describe_owner(self.read_owner())}. "
                "Wait for it to finish, stop it, or give this run another name (name=...)"
            ) from None
        previous = self.read_owner()
        if previous and not self._previous_is_dead(previous):
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent}: locked by {describe_owner(previous)}, which cannot be checked from "
                f"{socket.gethostname()}; if that run is over, delete {self.path}"
            )
        if previous:
            self.log(f"taking over the stale lock of {describe_owner(previous)}, which is no longer running")
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _previous_is_dead(owner: dict[str, Any]) -> bool:
        """We hold the flock, so on this host the previous owner has ended. A lock written on
        another host proves nothing where the filesystem does not share flocks between hosts."""
        return owner.get("host") == socket.gethostname()

    def release(self) -> None:
        if self._fd is None:
            return
        # Emptied, not deleted: deleting would let a waiting process lock the unlinked inode
        # while a third creates a new file and locks that one too.
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:  # noqa: PYI034
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
