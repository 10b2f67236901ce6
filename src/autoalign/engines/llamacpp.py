"""The "llamacpp" generation backend: the checkpoint exported to GGUF and served by llama.cpp.

For each checkpoint a stage generates with, the pool starts one llama-server (parallel slots,
continuous batching) on 127.0.0.1 and keeps it while the model is unchanged; release() stops it
before training needs the memory. Requests go through the HTTP backend (generation/openai.py:
retries, accounting), as many at once as the server has slots, and the pool's answer cache sits
in front as for any backend. The GGUF export is keyed by the checkpoint's content and the
outtype, so a resumed run reuses it.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import torch

from autoalign.config import ModelConfig
from autoalign.engines.gguf_export import ExportError, convert_gguf, export_gguf
from autoalign.engines.llamacpp_build import (
    EngineUnavailable,
    converter_script,
    installed_converter,
    installed_server,
    server_binary,
)
from autoalign.engines.served import SERVED_NAME, ServedGenerator
from autoalign.engines.server import ManagedServer
from autoalign.engines.vllm import vllm_installed
from autoalign.models.bundled import BUNDLED, cached_dir, ensure_gguf, is_cached
from autoalign.models.loading import load_tokenizer
from autoalign.models.hardware import fast_bf16

SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def _shape(model_dir: Path) -> tuple | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return tuple(config.get(k) for k in SHAPE_KEYS)


def template_gguf(cfg: ModelConfig, model_dir: Path) -> Path | None:
    """The GGUF whose metadata (vocabulary, chat template, hyper-parameters) the export reuses:
    the one the recipe names, else the bundled model's, else that of the bundled model a
    checkpoint was trained from (same architecture and sizes); None: no GGUF describes the model,
    so llama.cpp's own converter exports it."""
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
    return None


def check_convertible(model_dir: Path, log=print) -> None:
    """llama.cpp's converter knows the model's architecture and tokenizer: its vocabulary-only
    export (seconds) fails where the full one would, before a run writes anything."""
    error = _vocabulary_export_error(model_dir.resolve(), converter_script(log))
    if error is not None:
        raise EngineUnavailable(
            f"model.backend llamacpp: llama.cpp cannot export {model_dir} ({error}); use model.backend "
            "transformers, or set model.llamacpp.template_gguf to a GGUF of the same model"
        )


@functools.cache
def _vocabulary_export_error(model_dir: Path, converter: Path) -> str | None:
    """Once per process and model: `backend: auto` tries it, then the run's engine check does."""
    with tempfile.TemporaryDirectory(prefix="autoalign-vocab-") as tmp:
        try:
            convert_gguf(model_dir, converter, Path(tmp) / "vocab.gguf", vocab_only=True)
        except ExportError as err:
            return str(err)
    return None


def fastest_backend(cfg: ModelConfig, model_dir: Path) -> str:
    """What `backend: auto` means on this machine: vLLM on a GPU where it is installed; else
    llama.cpp when its server is installed (or built before) and the model can be exported (a
    template GGUF, or llama.cpp's converter fetched before and knowing the model); else the
    in-process transformers backend."""
    if vllm_installed(cfg):
        return "vllm"
    try:
        if installed_server(cfg.llamacpp.server) is not None:
            if template_gguf(cfg, model_dir) is None:
                if installed_converter() is None:  # auto fetches nothing
                    return "transformers"
                check_convertible(model_dir, log=lambda message: None)
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
    if cfg.backend == "llamacpp" and cfg.llamacpp.outtype == "auto":
        cfg.llamacpp.outtype = weight_type(cfg)


def check_engine(cfg: ModelConfig, model_dir: Path, log=print) -> Path:
    """Before a run writes anything: the server binary (built now, once, if there is none) and the
    way checkpoints will be exported (a template GGUF, or llama.cpp's converter). Returns the binary."""
    binary = server_binary(cfg.llamacpp.server, log)
    if template_gguf(cfg, model_dir) is None:
        check_convertible(model_dir, log)
    return binary


def weight_type(cfg: ModelConfig) -> str:
    """The GGUF weight type the export writes: cfg.llamacpp.outtype with "auto" settled for this CPU
    (the server is built for the CPU it runs on, so it uses the bf16 instructions the CPU has)."""
    if cfg.llamacpp.outtype != "auto":
        return cfg.llamacpp.outtype
    return "bf16" if fast_bf16(torch.device("cpu")) else "f16"


def exported_gguf(engine_dir: Path, ref, cfg: ModelConfig) -> Path:
    outtype = weight_type(cfg)
    out = engine_dir / f"{ref.key}-{outtype}.gguf"
    if not out.exists():
        # The chat template transformers applies to this checkpoint, so both backends format alike.
        chat_template = load_tokenizer(ref.path, cfg.chat_template).chat_template
        template = template_gguf(cfg, ref.path)
        if template is not None:
            export_gguf(ref.path, template, out, outtype, chat_template)
        else:
            log_path = engine_dir / "logs" / f"convert-{ref.key}.log"
            convert_gguf(ref.path, converter_script(), out, outtype, chat_template, log_path=log_path)
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
    return ServedGenerator(server, f"{ref.label} (llama.cpp {weight_type(cfg)})", cfg.llamacpp.parallel)
