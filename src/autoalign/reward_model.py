"""`autoalign rm train`: a Bradley-Terry reward model (train/reward_model.py) trained on preference
pairs from files or from the loops' runs, measured on held-out pairs, saved for the judge.

    pairs     {prompt, chosen, rejected} rows (JSONL or Parquet; prompt a string or messages,
              answers strings or message lists: what every loop writes to iter_t/pairs), or a
              run directory, whose iterations' training pairs are all read
    split     by prompt: a seeded share of the prompts is held out, never trained on
    train     r(x, y) = scalar head on the last token; loss -log sigmoid(r(x, y_w) - r(x, y_l))
    measure   pairwise accuracy and the reward-modeling metrics (eval/reward_modeling.py) on the
              held-out pairs, before training (the fresh head: chance) and after
    save      save_pretrained (a sequence classifier with num_labels=1) + tokenizer + rm.json

The saved directory is what `judge.reward_model` (judges/reward_model.py) loads.
Run it:  autoalign rm train runs/verifiable_small --model smollm2 --out runs/rm_smollm2
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from autoalign.config import TrainConfig
from autoalign.eval.reward_modeling import agreement_metrics
from autoalign.io import DataError, atomic_write_text, iter_rows, replacing_dir, require_field
from autoalign.models import resolve_model
from autoalign.train.reward_model import Comparison, load_reward_model, reward_margins, train_reward_model
from autoalign.types import Pair, RankedGroup, user_message

METADATA = "rm.json"
"""Written beside the weights: base model, data, held-out metrics. Its presence marks a reward model."""


def _answer(path: Path, line: int, row: dict, name: str) -> str:
    value = require_field(path, line, row, name, (str, list))
    if isinstance(value, list):
        if not value or not isinstance(value[-1], dict) or not isinstance(value[-1].get("content"), str):
            raise DataError(f"{path}:{line}: field '{name}' must be a string or a list of messages")
        return value[-1]["content"]
    return value


def load_preference_file(path: Path) -> list[Pair]:
    pairs = []
    for line, row in iter_rows(path):
        prompt = require_field(path, line, row, "prompt", (str, list))
        messages = user_message(prompt) if isinstance(prompt, str) else prompt
        chosen, rejected = _answer(path, line, row, "chosen"), _answer(path, line, row, "rejected")
        pairs.append(Pair(str(row.get("prompt_id", f"{path.name}:{line}")), messages, chosen, rejected))
    if not pairs:
        raise DataError(f"{path}: no preference pairs")
    return pairs


def load_preferences(sources: list[Path]) -> list[Pair]:
    """Pairs from files, or from run directories (every iter_*/pairs/data.jsonl, the training set
    each iteration's DPO saw)."""
    pairs = []
    for source in sources:
        if source.is_dir():
            files = sorted(source.glob("iter_*/pairs/data.jsonl"), key=lambda p: int(p.parent.parent.name[5:]))
            if not files:
                raise DataError(f"{source}: a directory without iter_*/pairs/data.jsonl (not a run directory?)")
        elif source.exists():
            files = [source]
        else:
            raise DataError(f"{source}: file not found")
        for file in files:
            pairs += load_preference_file(file)
    return pairs


def _prompt_key(pair: Pair) -> str:
    return json.dumps(pair.prompt, sort_keys=True)


def split_by_prompt(pairs: list[Pair], heldout_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held out): each prompt goes wholly to one side, chosen by a seeded hash of its
    text, so the held-out pairs ask questions the reward model never trained on."""
    rank = lambda key: hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()
    prompts = sorted({_prompt_key(p) for p in pairs}, key=rank)
    held = set(prompts[: round(heldout_fraction * len(prompts))])
    return [p for p in pairs if _prompt_key(p) not in held], [p for p in pairs if _prompt_key(p) in held]


def comparisons(pairs: list[Pair]) -> list[Comparison]:
    return [Comparison(p.prompt, p.chosen, p.rejected, 1.0) for p in pairs]


def heldout_metrics(margins: list[float], pairs: list[Pair]) -> dict:
    """The reward-modeling metrics on chosen-over-rejected (gold 1 > 0) with the model's margin."""
    groups = [RankedGroup(p.prompt[-1]["content"], [p.chosen, p.rejected], [1.0, 0.0]) for p in pairs]
    return agreement_metrics(groups, [[m, 0.0] for m in margins], max_score=float("inf"))


def train_from_files(
    sources: list[Path], model: str, out: Path, cfg: TrainConfig, heldout_fraction: float, seed: int, log=print
) -> dict:
    """Train, measure and save; returns what rm.json records."""
    pairs = load_preferences(sources)
    train, heldout = split_by_prompt(pairs, heldout_fraction, seed)
    if not train:
        raise DataError(f"no training pairs left after holding out {heldout_fraction:.0%} of the prompts")
    base = resolve_model(model, log=log)
    rm, tokenizer = load_reward_model(base, seed=seed)
    log(f"{len(pairs)} pairs: {len(train)} to train on, {len(heldout)} held out (by prompt)")
    before = heldout_metrics(reward_margins(rm, tokenizer, comparisons(heldout), cfg), heldout) if heldout else None
    started = time.perf_counter()
    rm, history = train_reward_model(rm, tokenizer, comparisons(train), cfg, seed)
    seconds = time.perf_counter() - started
    after = heldout_metrics(reward_margins(rm, tokenizer, comparisons(heldout), cfg), heldout) if heldout else None
    record = {
        "base": model,
        "base_path": str(base),
        "sources": [str(s) for s in sources],
        "train_pairs": len(train),
        "heldout_pairs": len(heldout),
        "seed": seed,
        "train": cfg.model_dump(mode="json"),
        "train_seconds": round(seconds, 1),
        "final_loss": history[-1]["loss"],
        "heldout_before": before,
        "heldout": after,
    }
    # Written beside `out` and renamed into place: a crash never leaves a half-saved reward model.
    with replacing_dir(out) as partial:
        rm.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        atomic_write_text(partial / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        atomic_write_text(partial / METADATA, json.dumps(record, indent=2))
    return record
