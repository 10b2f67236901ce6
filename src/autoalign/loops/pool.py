"""Models a run refers to, and loading them lazily (a fully cached run loads nothing)."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from autoalign.config import ModelConfig
from autoalign.generation.hf import HFGenerator
from autoalign.models.loading import LoadedModel, load_model


@dataclass(frozen=True)
class ModelRef:
    """A checkpoint on disk; key identifies its content for stage keys (the key of the stage that
    wrote it, or the spec of a starting model)."""

    label: str
    path: Path
    key: str


class ModelPool:
    def __init__(self, cfg: ModelConfig, generation_batch_size: int = 8):
        self.cfg = cfg
        self.batch_size = generation_batch_size
        self._loaded: dict[Path, LoadedModel] = {}

    def get(self, ref: ModelRef) -> LoadedModel:
        if ref.path not in self._loaded:
            self._loaded[ref.path] = load_model(ref.path, self.cfg.dtype, self.cfg.chat_template)
        return self._loaded[ref.path]

    def fresh(self, ref: ModelRef) -> LoadedModel:
        """A private copy for training, which changes weights in place."""
        return load_model(ref.path, self.cfg.dtype, self.cfg.chat_template)

    def generator(self, ref: ModelRef, batch_size: int | None = None) -> HFGenerator:
        return HFGenerator(self.get(ref), batch_size=batch_size or self.batch_size)

    def release(self, keep: set[Path] = frozenset()) -> None:
        for path in [p for p in self._loaded if p not in keep]:
            del self._loaded[path]
        gc.collect()


def save_checkpoint(model: torch.nn.Module, loaded: LoadedModel, out_dir: Path) -> None:
    """save_pretrained into a temporary sibling, then rename: a crash never leaves a partial
    checkpoint that looks complete."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
