"""Seed and prompt data: the bundled sets (builtin:NAME) and user files (JSONL or Parquet).

IFT rows: {"messages": [..., {"role": "assistant", ...}]} or {"prompt": str, "response": str}.
EFT rows: {"instruction", "response", "judgement"}; the judgement ends with `Score: N`.
Prompt rows: {"prompt": str} or {"messages": [..., {"role": "user", ...}]}; optional "id",
unique within the file (stages match answers to prompts by id).
An empty file is an error naming the file; a repeated id names both lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoalign.config import BUILTIN_PREFIX
from autoalign.io import DataError, iter_rows, require_field
from autoalign.types import Message, Prompt
from autoalign.verdicts import parse_score

BUILTIN_DIR = Path(__file__).parent
ROLES = {"system", "user", "assistant"}


def resolve_data_path(spec: str) -> Path:
    if spec.startswith(BUILTIN_PREFIX):
        path = BUILTIN_DIR / spec[len(BUILTIN_PREFIX) :]
        if not path.exists():
            names = sorted(p.name for p in BUILTIN_DIR.glob("*.jsonl"))
            raise DataError(f"no built-in data file '{spec}'; available: {names}")
        return path
    return Path(spec)


def _messages(path: Path, line: int, row: dict, last_role: str) -> list[Message]:
    messages = require_field(path, line, row, "messages", list)
    if not messages:
        raise DataError(f"{path}:{line}: field 'messages' is empty")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(
                f"{path}:{line}: field 'messages[{i}]' must be {{role: system|user|assistant, content: str}}"
            )
    if messages[-1]["role"] != last_role:
        raise DataError(f"{path}:{line}: field 'messages' must end with a '{last_role}' message")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def located_ift(spec: str) -> list[tuple[str, list[Message]]]:
    """("file:line", conversation ending with the assistant answer to imitate) per row."""
    path = resolve_data_path(spec)
    conversations = []
    for line, row in iter_rows(path):
        if "messages" in row:
            conversation = _messages(path, line, row, last_role="assistant")
        elif "prompt" in row or "response" in row:
            prompt = require_field(path, line, row, "prompt", str)
            response = require_field(path, line, row, "response", str)
            conversation = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        else:
            raise DataError(f"{path}:{line}: expected field 'messages' or fields 'prompt' and 'response'")
        conversations.append((f"{path}:{line}", conversation))
    if not conversations:
        raise DataError(f"{path}: no examples (the file is empty)")
    return conversations


def load_ift(spec: str) -> list[list[Message]]:
    """Conversations ending with the assistant answer to imitate."""
    return [conversation for _, conversation in located_ift(spec)]


def located_prompts(spec: str, source: str = "") -> list[tuple[str, Prompt]]:
    """("file:line", prompt) per row; ids are the rows' "id" or "<file stem>-<line>"."""
    path = resolve_data_path(spec)
    prompts, first_line = [], {}
    for line, row in iter_rows(path):
        if "messages" in row:
            messages = _messages(path, line, row, last_role="user")
        else:
            messages = [{"role": "user", "content": require_field(path, line, row, "prompt", str)}]
        if not messages[-1]["content"].strip():
            raise DataError(f"{path}:{line}: the prompt is empty")
        prompt_id = str(row.get("id", f"{path.stem}-{line}"))
        if prompt_id in first_line:
            raise DataError(
                f"{path}:{line}: field 'id' repeats {prompt_id!r} from line {first_line[prompt_id]}; ids must be unique"
            )
        first_line[prompt_id] = line
        prompts.append((f"{path}:{line}", Prompt(id=prompt_id, messages=messages, source=source or path.stem)))
    if not prompts:
        raise DataError(f"{path}: no prompts (the file is empty)")
    return prompts


def load_prompts(spec: str, source: str = "") -> list[Prompt]:
    return [prompt for _, prompt in located_prompts(spec, source)]


@dataclass(frozen=True)
class EFTExample:
    """An evaluation example: the judge's answer (justification + score) to a rubric prompt."""

    instruction: str
    response: str
    judgement: str
    score: int


def load_eft(spec: str) -> list[EFTExample]:
    path = resolve_data_path(spec)
    examples = []
    for line, row in iter_rows(path):
        instruction = require_field(path, line, row, "instruction", str)
        response = require_field(path, line, row, "response", str)
        judgement = require_field(path, line, row, "judgement", str)
        score = parse_score(judgement)
        if score is None:
            raise DataError(f"{path}:{line}: field 'judgement' must end with a line 'Score: N' (N from 0 to 5)")
        if "score" in row and row["score"] != score:
            raise DataError(f"{path}:{line}: field 'score' is {row['score']} but the judgement says {score}")
        examples.append(EFTExample(instruction, response, judgement, score))
    if not examples:
        raise DataError(f"{path}: no EFT examples (the file is empty)")
    return examples
