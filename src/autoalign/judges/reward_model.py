"""A trained reward model as the judge (judge.reward_model): each answer's score is its reward
r(x, y), the scalar head on the last token of the chat-rendered prompt + answer (the model
`autoalign rm train` saves, or any sequence classifier with one label).

Rewards are not on the rubric's 0..5 scale, only their order and differences mean anything:
best-vs-worst pairs and best-of-N read them as they are. No parse can fail, so every answer
gets a score.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from autoalign.config import ConfigError, TrainConfig
from autoalign.judges.base import JudgeItem
from autoalign.models.loading import resolve_device
from autoalign.store import content_key
from autoalign.train.reward_model import Comparison, RewardScores, encode
from autoalign.types import Judgment

WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin")


@cache
def _weights_digest(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def model_digest(directory: Path) -> str:
    """The reward model's identity for stage keys: its weights' and config's content."""
    parts = []
    for name in (*WEIGHT_FILES, "config.json"):
        file = directory / name
        if file.exists():
            stat = file.stat()
            parts.append((name, _weights_digest(str(file), stat.st_size, stat.st_mtime)))
    if not any(name in WEIGHT_FILES for name, _ in parts):
        raise ConfigError(f"judge.reward_model: {directory} has no weights ({' or '.join(WEIGHT_FILES)})")
    return content_key("reward-model", parts)


class RewardModelJudge:
    def __init__(self, directory: Path, max_length: int = 1024, batch_size: int = 8, device: str = "auto"):
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32)
        self.model = model.to(resolve_device(device)).eval()
        self.scorer = RewardScores(self.model)
        self.max_length, self.batch_size = max_length, batch_size

    @torch.no_grad()
    def rewards(self, items: list[JudgeItem]) -> list[float]:
        # encode() takes comparisons; each answer goes in as `first`, its reward alone is read.
        encoded = [
            e for e, _ in encode(self.tokenizer, [Comparison(i.prompt, i.response, "") for i in items], self.max_length)
        ]
        out: list[float] = []
        for start in range(0, len(encoded), self.batch_size):
            out += self.scorer(encoded[start : start + self.batch_size], self.tokenizer.pad_token_id).tolist()
        return out

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        return [
            Judgment(score=r, raw=[f"reward model: r = {r:.4f}"], parsed=True, samples=[r]) for r in self.rewards(items)
        ]


class RewardModelJudgeFactory:
    """judge.reward_model=<directory>: that reward model scores every answer."""

    kind = "reward_model"

    def __init__(self, directory: str | Path, max_length: int = TrainConfig().max_length):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(
                f"judge.reward_model: {self.directory} is not a directory (train one: autoalign rm train)"
            )
        self.max_length = max_length
        self.key = content_key(model_digest(self.directory), max_length)

    def __call__(self, ref, cfg, seed) -> RewardModelJudge:
        return RewardModelJudge(self.directory, self.max_length)


def from_config(judge_cfg) -> RewardModelJudgeFactory:
    return RewardModelJudgeFactory(judge_cfg.reward_model)


def trained_on(directory: Path) -> dict | None:
    """What `autoalign rm train` recorded about the model (rm.json), if it made it."""
    meta = Path(directory) / "rm.json"
    return json.loads(meta.read_text()) if meta.exists() else None
