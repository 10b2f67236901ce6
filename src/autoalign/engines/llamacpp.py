"""The "llamacpp" generation backend: the checkpoint exported to GGUF and served by llama.cpp.

For each checkpoint a stage generates with, the pool starts one llama-server (parallel slots,
continuous batching) on 127.0.0.1 and keeps it while the model is unchanged; release() stops it
before training needs the memory. Requests go through the HTTP backend (generation/openai.py:
retries, accounting), as many at once as the server has slots, and the pool's answer cache sits
in front as for any backend. The GGUF export is keyed by the checkpoint's content and the
outtype, so a resumed run reuses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from autoalign.config import ModelConfig
from autoalign.engines.gguf_export import export_gguf
from autoalign.engines.llamacpp_build import EngineUnavailable, installed_server, server_binary
from autoalign.engines.served import SERVED_NAME, ServedGenerator
from autoalign.engines.server import ManagedServer
from autoalign.engines.vllm import vllm_installed
from autoalign.models.bundled import BUNDLED, cached_dir, ensure_gguf, is_cached
from autoalign.models.loading import load_tokenizer

SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def _shape(model_dir: Path) -> tuple | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return tuple(config.get(k) for k in SHAPE_KEYS)


def template_gguf(cfg: ModelConfig, model_dir: Path) -> Path:
    """The GGUF whose metadata (vocabulary, chat template, hyper-parameters) the export reuses:
    the one the recipe names, else the bundled model's, else that of the bundled model a
    checkpoint was trained from (same architecture and sizes)."""
    if cfg.llamacpp.template_gguf:
        path = Path(cfg.llamacpp.template_gguf).expanduser()
        if not path.is_file():
            raise EngineUnavailable(f"model.llamacpp.template_gguf: {path} does not exist")
        return path
    if cfg.name in BUNDLED:
        return ensure_gguf(cfg.name)
    shape = _shape(model_dir)
    for name in BUNDLED:
        if shape is not None and is_cached(name) and _shape(cached_dir(name)) == shape:
            return ensure_gguf(name)
    raise EngineUnavailable(
        f"model.backend llamacpp: {cfg.name} is not a bundled model or one trained from it, so set "
        "model.llamacpp.template_gguf to a GGUF of the same model (its tokenizer and architecture are reused)"
    )


def fastest_backend(cfg: ModelConfig, model_dir: Path) -> str:
    """What `backend: auto` means on this machine: vLLM on a GPU where it is installed; else
    llama.cpp when its server is installed (or built before) and the model can be exported; else
    the in-process transformers backend."""
    if vllm_installed(cfg):
        return "vllm"
    try:
        if installed_server(cfg.llamacpp.server) is not None:
            template_gguf(cfg, model_dir)
            return "llamacpp"
    except EngineUnavailable:
        pass
    return "transformers"


def settle_auto_backend(cfg: ModelConfig, model_dir: Path, log=print) -> None:
    """Replace `backend: auto` by what it means here, before anything is keyed by the backend
    (answers name the backend that made them)."""
    if cfg.backend == "auto":
        cfg.backend = fastest_backend(cfg, model_dir)
        hint = "" if cfg.backend != "transformers" else " (model.backend: llamacpp builds llama.cpp's server once)"
        log(f"generation backend: {cfg.backend}{hint}")


def check_engine(cfg: ModelConfig, model_dir: Path, log=print) -> Path:
    """Before a run writes anything: the server binary (built now, once, if there is none) and the
    GGUF whose metadata the exports reuse. Returns the binary."""
    template_gguf(cfg, model_dir)
    return server_binary(cfg.llamacpp.server, log)


def exported_gguf(engine_dir: Path, ref, cfg: ModelConfig) -> Path:
    out = engine_dir / f"{ref.key}-{cfg.llamacpp.outtype}.gguf"
    if not out.exists():
        # The chat template transformers applies to this checkpoint, so both backends format alike.
        chat_template = load_tokenizer(ref.path, cfg.chat_template).chat_template
        export_gguf(ref.path, template_gguf(cfg, ref.path), out, cfg.llamacpp.outtype, chat_template)
    return out


def server_command(binary: Path, gguf: Path, cfg: ModelConfig) -> list[str]:
    opts = cfg.llamacpp
    return [
        str(binary),
        "--model",
        str(gguf),
        "--alias",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--parallel",
        str(opts.parallel),
        "--ctx-size",
        str(opts.parallel * opts.context_per_slot),
        "--threads",
        str(opts.threads or os.cpu_count() or 1),
        "--cont-batching",
        "--jinja",  # the GGUF's own chat template, as transformers applies it
        "--offline",
    ]


def start_server(pool, ref, cfg: ModelConfig) -> ManagedServer:
    gguf = exported_gguf(pool.engine_dir, ref, cfg)
    binary = server_binary(cfg.llamacpp.server)
    log_path = pool.engine_dir / "logs" / f"llama-server-{ref.key}.log"
    return ManagedServer(server_command(binary, gguf, cfg), log_path).start()


def managed(pool, ref, batch_size: int) -> ServedGenerator:
    """The "llamacpp" backend (registry BACKENDS); batch_size is the server's business (slots)."""
    cfg = pool.model_cfg(ref)
    server = pool.engine(ref, "llamacpp", lambda: start_server(pool, ref, cfg))
    return ServedGenerator(server, f"{ref.label} (llama.cpp {cfg.llamacpp.outtype})", cfg.llamacpp.parallel)
