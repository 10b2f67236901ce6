"""What every CLI module shares: the error console, the user-error types, and failing cleanly."""

from __future__ import annotations

import typer
from rich.console import Console

from autoalign.config import ConfigError
from autoalign.engines import EngineError
from autoalign.generation.openai import EndpointConfigError
from autoalign.io import DataError, StorageError
from autoalign.models import ModelNotFound
from autoalign.pairs import NoPairsError
from autoalign.runlock import RunLockedError
from autoalign.store import StageFailedError
from autoalign.train import NonFiniteLossError

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
    RunLockedError,
    NonFiniteLossError,
    StorageError,
)


def fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
    raise typer.Exit(code=2)


def stdout_console() -> Console:
    """Tables on stdout; wide enough in logs and pipes that they do not wrap."""
    out = Console()
    return out if out.is_terminal else Console(width=180)


def load_pool(model: str, dtype: str, chat_template: str | None, backend: str = "transformers"):
    """(pool, ref) for one model named on the command line; an engine backend ("auto",
    "llamacpp") is settled and its server checked (built once if missing) before anything runs."""
    from autoalign.config import ModelConfig
    from autoalign.engines.llamacpp import check_engine, settle_auto_backend
    from autoalign.engines.vllm import check_vllm
    from autoalign.models import resolve_model
    from autoalign.runtime.pool import ModelPool, ModelRef

    cfg = ModelConfig(name=model, dtype=dtype, chat_template=chat_template, backend=backend)
    path = resolve_model(model, log=lambda m: console.print(m))
    settle_auto_backend(cfg, path, log=lambda m: console.print(m))
    if cfg.backend == "llamacpp":
        check_engine(cfg, path, log=lambda m: console.print(m))
    elif cfg.backend == "vllm":
        check_vllm(cfg)
    return ModelPool(cfg), ModelRef("model", path, model)
