"""IFEval-format prompt files: one JSON object per line with `key`, `prompt`,
`instruction_id_list` and `kwargs` (one argument dict per instruction id). The public file is
bundled as builtin:ifeval_input_data.jsonl (the 541 IFEval prompts, Zhou et al. 2023, from
google-research/google-research, Apache License 2.0); any file in this format works (JSONL or
Parquet).

Every row is checked against the checkers before anything is generated: an unknown instruction
id, a missing or unexpected argument, or a wrong type is an error naming file, line and field.
Arguments set to null are ignored (the public file's convention for "not used").
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoalign.data import resolve_data_path
from autoalign.verifiers.ifeval.checkers import CHECKERS, RELATIONS
from autoalign.io import DataError, iter_rows, require_field
from autoalign.types import Prompt, user_message


@dataclass(frozen=True)
class IFEvalPrompt:
    key: str
    prompt: str
    instruction_ids: list[str]
    kwargs: list[dict[str, Any]] = field(default_factory=list)

    def to_prompt(self) -> Prompt:
        return Prompt(id=f"ifeval-{self.key}", messages=user_message(self.prompt), source="ifeval")


def _check_arguments(path: Path, line: int, index: int, instruction_id: str, kwargs: dict) -> dict:
    where = f"{path}:{line}: field 'kwargs[{index}]' ({instruction_id})"
    params = inspect.signature(CHECKERS[instruction_id]).parameters
    expected = [name for name in params if name != "response"]
    given = {k: v for k, v in kwargs.items() if v is not None}
    missing = [name for name in expected if name not in given]
    unknown = [name for name in given if name not in expected]
    if missing or unknown:
        raise DataError(f"{where}: expected arguments {expected}; missing {missing}, unexpected {unknown}")
    for name, value in given.items():
        annotation = params[name].annotation
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[annotation]
        if not ok:
            raise DataError(f"{where}: argument '{name}' must be {annotation}, got {value!r}")
        if name.endswith("relation") and value not in RELATIONS:
            raise DataError(f"{where}: argument '{name}' must be one of {list(RELATIONS)}, got {value!r}")
    return given


def load_ifeval(spec: str | Path) -> list[IFEvalPrompt]:
    path = resolve_data_path(str(spec))
    prompts, first_line = [], {}
    for line, row in iter_rows(path):
        prompt = require_field(path, line, row, "prompt", str)
        key = str(row.get("key", line))
        if key in first_line:
            raise DataError(
                f"{path}:{line}: field 'key' repeats {key!r} from line {first_line[key]}; keys must be unique"
            )
        first_line[key] = line
        ids = require_field(path, line, row, "instruction_id_list", list)
        kwargs = require_field(path, line, row, "kwargs", list)
        if len(ids) != len(kwargs):
            raise DataError(f"{path}:{line}: field 'kwargs' has {len(kwargs)} entries for {len(ids)} instruction ids")
        for i, (instruction_id, args) in enumerate(zip(ids, kwargs)):
            if instruction_id not in CHECKERS:
                raise DataError(
                    f"{path}:{line}: field 'instruction_id_list[{i}]': unknown instruction id {instruction_id!r}"
                )
            if not isinstance(args, dict):
                raise DataError(f"{path}:{line}: field 'kwargs[{i}]' must be an object")
            kwargs[i] = _check_arguments(path, line, i, instruction_id, args)
        prompts.append(IFEvalPrompt(key=key, prompt=prompt, instruction_ids=list(ids), kwargs=kwargs))
    if not prompts:
        raise DataError(f"{path}: no prompts")
    return prompts
