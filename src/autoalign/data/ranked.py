"""Prompts with several responses and a gold ranking, for measuring a model as a judge.

Accepted files (JSONL or Parquet), detected per file from the first row:
- ranked rows: {"prompt": str, "responses": [str, ...], and "scores": [number, ...] (higher is
  better) or "ranks": [int, ...] (0 = best, as in OpenAssistant)};
- EFT rows: {"instruction", "response", "judgement" ending in `Score: N`}, grouped by
  instruction (the bundled seed_eft has one response per instruction: pool the groups when
  scoring, see eval/reward_modeling.pool_groups, to rank all responses by their rubric scores);
- OpenAssistant message trees ({"prompt": {"role": "prompter", "replies": [...]}}): every
  first user turn with two or more ranked replies.
Ranks become scores by negation, so higher is always better downstream.
"""

from __future__ import annotations

from pathlib import Path

from autoalign.data import load_eft, resolve_data_path
from autoalign.data.oasst import load_oasst
from autoalign.io import DataError, iter_rows, require_field
from autoalign.types import RankedGroup


def _ranked_rows(path: Path) -> list[RankedGroup]:
    groups = []
    for line, row in iter_rows(path):
        prompt = require_field(path, line, row, "prompt", str)
        responses = require_field(path, line, row, "responses", list)
        if "scores" in row:
            gold = [float(s) for s in require_field(path, line, row, "scores", list)]
        elif "ranks" in row:
            gold = [-float(r) for r in require_field(path, line, row, "ranks", list)]
        else:
            raise DataError(f"{path}:{line}: expected field 'scores' or 'ranks' beside 'responses'")
        if len(gold) != len(responses) or not responses:
            raise DataError(
                f"{path}:{line}: field 'responses' has {len(responses)} entries but the gold ranking has {len(gold)}"
            )
        if not all(isinstance(r, str) for r in responses):
            raise DataError(f"{path}:{line}: field 'responses' must be a list of strings")
        groups.append(RankedGroup(prompt, responses, gold))
    return groups


def _group_examples(examples) -> list[RankedGroup]:
    by_prompt: dict[str, RankedGroup] = {}
    for e in examples:
        group = by_prompt.setdefault(e.instruction, RankedGroup(e.instruction, [], []))
        group.responses.append(e.response)
        group.gold.append(float(e.score))
    return list(by_prompt.values())


def load_ranked(spec: str) -> list[RankedGroup]:
    path = resolve_data_path(spec)
    first = next(iter_rows(path), (0, {}))[1]
    if "responses" in first:
        groups = _ranked_rows(path)
    elif "instruction" in first:
        groups = _group_examples(load_eft(spec))
    elif isinstance(first.get("prompt"), dict):
        groups = _group_examples(load_oasst(path)[1])
    else:
        raise DataError(
            f"{path}:1: expected ranked rows {{prompt, responses, scores|ranks}}, EFT rows {{instruction, response, judgement}} or OpenAssistant trees"
        )
    if not groups:
        raise DataError(f"{path}: no ranked responses")
    return groups
