"""The "vllm" generation backend: each checkpoint directory served by vLLM's OpenAI-compatible
server (`vllm serve`), the fast engine of a GPU machine.

The path is the llama.cpp engine's (engines/llamacpp.py) without the export: vLLM loads the
Hugging Face checkpoint as training saved it. For each checkpoint a stage generates with, the
pool starts one server on a free port of 127.0.0.1 (its log under the run's engine directory),
keeps it while the model is unchanged and stops it by its PID before training needs the GPU.
Requests go through the HTTP backend, as many at once as the server decodes (model.vllm.parallel).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import torch

from autoalign.config import ModelConfig
from autoalign.engines.llamacpp_build import EngineUnavailable
from autoalign.engines.served import SERVED_NAME, ServedGenerator
from autoalign.engines.server import ManagedServer
from autoalign.models.loading import read_chat_template


def launcher_found(cfg: ModelConfig) -> bool:
    return shutil.which(cfg.vllm.command[0]) is not None


def vllm_installed(cfg: ModelConfig) -> bool:
    """vLLM is importable and its launcher is on PATH, and there is a GPU for it to use."""
    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None and launcher_found(cfg)


def check_vllm(cfg: ModelConfig) -> None:
    """Before a run writes anything: the launcher model.vllm.command names exists."""
    if not launcher_found(cfg):
        raise EngineUnavailable(
            f"model.backend vllm: {cfg.vllm.command[0]!r} (model.vllm.command) is not on PATH; "
            "install vLLM on a GPU machine (pip install vllm), or use backend llamacpp or transformers"
        )


def server_command(model_dir: Path, cfg: ModelConfig, chat_template: Path | None) -> list[str]:
    opts = cfg.vllm
    command = [
        *opts.command,
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--served-model-name",
        SERVED_NAME,
        "--dtype",
        cfg.dtype,  # model.dtype's values are vLLM's own names
        "--max-num-seqs",
        str(opts.parallel),
        "--gpu-memory-utilization",
        str(opts.gpu_memory_utilization),
    ]
    if chat_template is not None:  # a base model's template, as the in-process backend applies it
        command += ["--chat-template", str(chat_template)]
    return command + list(opts.extra_args)


def start_server(pool, ref, cfg: ModelConfig) -> ManagedServer:
    template = None
    if cfg.chat_template:
        template = pool.engine_dir / f"chat-template-{ref.key}.jinja"
        template.parent.mkdir(parents=True, exist_ok=True)
        template.write_text(read_chat_template(cfg.chat_template))
    log_path = pool.engine_dir / "logs" / f"vllm-{ref.key}.log"
    command = server_command(Path(ref.path), cfg, template)
    return ManagedServer(command, log_path, startup_seconds=cfg.vllm.startup_seconds).start()


def managed(pool, ref, batch_size: int) -> ServedGenerator:
    """The "vllm" backend (registry BACKENDS); batch_size is the server's business."""
    cfg = pool.model_cfg(ref)
    server = pool.engine(ref, "vllm", lambda: start_server(pool, ref, cfg))
    return ServedGenerator(server, f"{ref.label} (vLLM)", cfg.vllm.parallel)
