"""Models a run refers to, and loading them lazily (a fully cached run loads nothing).

A ModelRef is a checkpoint on disk, run in-process; an EndpointRef is a model behind an
OpenAI-compatible server. Stages ask the pool for a generator and never know which they got.
"""

from __future__ import annotations

import gc
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from autoalign.config import EndpointConfig, ModelConfig
from autoalign.generation.base import Generator
from autoalign.generation.cached import CachedGenerator
from autoalign.generation.http_cache import ResponseCache
from autoalign.generation.openai import OpenAIGenerator
from autoalign.io import replacing_dir
from autoalign.models.bundled import cache_root
from autoalign.models.loading import LoadedModel, load_model
from autoalign.registry import BACKENDS, SERVER_BACKENDS, load_attr
from autoalign.store import content_key


@dataclass(frozen=True)
class ModelRef:
    """A checkpoint on disk; key identifies its content for stage keys (the key of the stage that
    wrote it, or the spec of a starting model). config overrides the pool's dtype / chat template
    (a teacher loaded alongside the student)."""

    label: str
    path: Path
    key: str
    config: ModelConfig | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EndpointRef:
    """A model served over HTTP; its key is what identifies its answers (URL and model name)."""

    label: str
    endpoint: EndpointConfig = field(compare=False)

    @property
    def key(self) -> str:
        return content_key("endpoint", self.endpoint.base_url, self.endpoint.model)


AnyModelRef = ModelRef | EndpointRef


class Engine(Protocol):
    """A process serving one checkpoint (engines/server.ManagedServer)."""

    def stop(self) -> None: ...


class ModelPool:
    """http_cache_dir: where remote answers are cached (one SQLite file per endpoint), normally
    inside the run directory so a resumed run never pays twice. answer_cache_dir: the same for
    in-process backends (one file per checkpoint, generation/cached.py), so a stage that re-runs
    only generates for requests it has not seen. engine_dir: where engine backends keep their
    exported weights and server logs (default: under the cache)."""

    def __init__(
        self,
        cfg: ModelConfig,
        generation_batch_size: int = 8,
        http_cache_dir: Path | None = None,
        answer_cache_dir: Path | None = None,
        engine_dir: Path | None = None,
    ):
        self.cfg = cfg
        self.batch_size = generation_batch_size
        self.http_cache_dir = http_cache_dir
        self.answer_cache_dir = answer_cache_dir
        self.engine_dir = engine_dir or cache_root() / "engines"
        self._loaded: dict[Path, LoadedModel] = {}
        self._local: dict[tuple, Generator] = {}
        self._remote: dict[str, OpenAIGenerator] = {}
        self._engines: dict[tuple, Engine] = {}
        self._lock = threading.RLock()  # stages may ask for a generator from two threads (in_flight)

    def model_cfg(self, ref: ModelRef) -> ModelConfig:
        """The settings a checkpoint loads and generates with (its own, else the run's)."""
        return ref.config or self.cfg

    def _load(self, ref: ModelRef) -> LoadedModel:
        cfg = self.model_cfg(ref)
        return load_model(ref.path, cfg.dtype, cfg.chat_template, cfg.device)

    def get(self, ref: ModelRef) -> LoadedModel:
        if ref.path not in self._loaded:
            self._loaded[ref.path] = self._load(ref)
        return self._loaded[ref.path]

    def generator(self, ref: AnyModelRef, batch_size: int | None = None) -> Generator:
        """The model's generator: the HTTP backend for an endpoint, else the model's configured
        backend (model.backend, from the registry), kept until release()."""
        with self._lock:
            if isinstance(ref, EndpointRef):
                return self.remote(ref)
            backend = self.model_cfg(ref).backend
            slot = (ref.path, backend, batch_size or self.batch_size)
            if slot not in self._local:
                generator = load_attr(BACKENDS[backend])(self, ref, batch_size or self.batch_size)
                if self.answer_cache_dir is not None:
                    cache = ResponseCache(self.answer_cache_dir / f"{_file_safe(ref.label)}-{backend}-{ref.key}.sqlite")
                    generator = CachedGenerator(generator, cache, content_key(ref.key, backend))
                self._local[slot] = generator
            return self._local[slot]

    def in_flight(self, ref: AnyModelRef, rows_per_chunk: int) -> int:
        """Chunks of work a stage hands this model's generator at once. In-process: one (the
        backend batches a chunk itself and is not to be called from two threads). A server (an
        endpoint, llama.cpp, vLLM): one chunk finishing its longest answers plus enough chunks
        for twice the server's slots, so slots are refilled as they free up (the HTTP backend
        still sends at most max_concurrency requests at once)."""
        if isinstance(ref, EndpointRef):
            slots = ref.endpoint.max_concurrency
        elif (backend := self.model_cfg(ref).backend) in SERVER_BACKENDS:
            slots = getattr(self.model_cfg(ref), backend).parallel
        else:
            return 1
        return 1 + math.ceil(2 * slots / max(1, rows_per_chunk))

    def engine(self, ref: ModelRef, backend: str, start: Callable[[], Engine]) -> Engine:
        """The server an engine backend runs for this checkpoint, started on first use, shared by
        the checkpoint's generators and stopped by release() (before training needs the memory)."""
        slot = (ref.path, backend)
        if slot not in self._engines:
            self._engines[slot] = start()
        return self._engines[slot]

    def remote(self, ref: EndpointRef) -> OpenAIGenerator:
        if ref.key not in self._remote:
            cache = None
            if self.http_cache_dir is not None:
                cache = ResponseCache(self.http_cache_dir / f"{_file_safe(ref.endpoint.model)}-{ref.key}.sqlite")
            self._remote[ref.key] = OpenAIGenerator(ref.endpoint, cache)
        return self._remote[ref.key]

    def remote_usage(self) -> dict[str, dict]:
        """Request/token accounting of every endpoint used so far in this process."""
        return {gen.label: gen.usage.snapshot() for gen in self._remote.values()}

    def release(self, keep: set[Path] = frozenset()) -> None:
        """Close the in-process generators and free the loaded models (but those in keep)."""
        for slot in [s for s in self._local if s[0] not in keep]:
            self._local.pop(slot).close()
        for slot in [s for s in self._engines if s[0] not in keep]:
            self._engines.pop(slot).stop()
        for path in [p for p in self._loaded if p not in keep]:
            del self._loaded[path]
        gc.collect()

    def close(self) -> None:
        """Everything: in-process generators, models and HTTP clients."""
        self.release()
        for gen in self._remote.values():
            gen.close()
        self._remote.clear()


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def save_checkpoint(model: torch.nn.Module, loaded: LoadedModel, out_dir: Path) -> None:
    """save_pretrained into a temporary sibling, then rename: a crash never leaves a partial
    checkpoint that looks complete."""
    with replacing_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
