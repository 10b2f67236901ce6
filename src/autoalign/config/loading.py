"""Reading a recipe: YAML, `extends:` inheritance, dotted `key=value` overrides, and errors that
name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autoalign.config.base import ConfigError, deep_merge, redact_url
from autoalign.config.run import RunConfig


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (so 3, 0.1, true, [a,b])."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like key=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"override '{assignment}': the key '{key}' has an empty part (expected e.g. dpo.beta=0.2)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{assignment}': the value is not valid YAML ({_yaml_problem(e)})") from None
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what is wrong and where (line:column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        elif not key:  # a rule across keys: the message names them
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
        else:
            got = e.get("input")
            got = redact_url(got) if key.endswith("base_url") and isinstance(got, str) else got
            shown = repr(got)
            lines.append(f"  {key}: {e['msg']} (got {shown if len(shown) <= 120 else shown[:117] + '...'})")
    return f"invalid config {source}:\n" + "\n".join(lines)


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe's keys, with `extends: other.yaml` (relative to this file) merged underneath:
    a recipe states only what differs from the one it extends. `name` is never inherited."""
    if not path.exists():
        raise ConfigError(f"recipe not found: {path}" + (f" (extended by {seen[-1]})" if seen else ""))
    if path.resolve() in seen:
        raise ConfigError(f"{path}: recipes extend each other in a cycle")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(e)}") from None
    if tree is None:
        raise ConfigError(f"{path}: the recipe is empty (write at least `name: my_run`, or extend another recipe)")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values")
    name = tree.get("name", path.stem)
    if "extends" in tree:
        base = read_recipe(path.parent / str(tree.pop("extends")), (*seen, path.resolve()))
        tree = deep_merge(base, tree)
    tree["name"] = name
    return tree


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    tree: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        path = Path(path)
        source = str(path)
        tree = read_recipe(path)
    for assignment in overrides or []:
        apply_override(tree, assignment)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None
