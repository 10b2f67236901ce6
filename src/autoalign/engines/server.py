"""A model server process that autoalign owns: started on a free port of 127.0.0.1, healthy
before it is used, logging to a file under the run directory, and stopped by its PID (never by
name: other servers on the machine are not ours)."""

from __future__ import annotations

import atexit
import socket
import subprocess
import time
from pathlib import Path

import httpx

from autoalign.engines import EngineError


class ServerFailed(EngineError):
    """The server exited or never became healthy; the message quotes its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedServer:
    """command is everything but the port; `{port}` in it is replaced. Use as a context manager
    or call start() / stop()."""

    def __init__(self, command: list[str], log_path: Path, health_path: str = "/health", startup_seconds: float = 120):
        self.port = free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.log_path = log_path
        self.health_path = health_path
        self.startup_seconds = startup_seconds
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> ManagedServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        atexit.register(self.stop)  # a server never outlives the process that started it
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(
                    f"{Path(self.command[0]).name} exited with code {self.process.returncode} before it was ready; "
                    f"the end of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                if httpx.get(self.base_url + self.health_path, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise ServerFailed(
            f"{Path(self.command[0]).name} was not healthy within {self.startup_seconds:.0f}s; "
            f"the end of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def stop(self, grace_seconds: float = 10.0) -> None:
        atexit.unregister(self.stop)  # nothing left to stop at exit (a pool starts one server per checkpoint)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
