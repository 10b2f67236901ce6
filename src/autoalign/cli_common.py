"""What every CLI module shares: the error console, the user-error types, and failing cleanly."""

from __future__ import annotations

import typer
from rich.console import Console

from autoalign.config import ConfigError
from autoalign.generation.openai import EndpointConfigError
from autoalign.engines import EngineError
from autoalign.io import DataError
from autoalign.models import ModelNotFound
from autoalign.pairs import NoPairsError
from autoalign.store import StageFailedError

console = Console(stderr=True)
USER_ERRORS = (
    ConfigError,
    DataError,
    ModelNotFound,
    FileNotFoundError,
    EndpointConfigError,
    StageFailedError,
    NoPairsError,
    EngineError,
)


def fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
    raise typer.Exit(code=2)


def stdout_console() -> Console:
    """Tables on stdout; wide enough in logs and pipes that they do not wrap."""
    out = Console()
    return out if out.is_terminal else Console(width=180)
