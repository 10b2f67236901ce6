"""Imports point down the layers, never up: a lower layer that imported a higher one would tie
the building blocks to one way of running them (and make import cycles). Every import of the
package's modules is checked, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src/autoalign"

# Lowest first. A module may import its own layer and any layer below it.
LAYERS = [
    {"types", "io", "registry", "config", "store", "runlock", "prompts", "chat", "verdicts"},
    {"models", "data"},
    {"generation", "train", "verifiers", "engines"},
    {"runtime", "judges", "synth", "pairs", "review", "inference"},
    {"stages"},
    {"eval"},
    {"loops", "reward_model"},
    {"summary", "report", "cli", "cli_common", "cli_eval", "cli_generate", "cli_rm", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def part_of(module: str) -> str:
    """autoalign.loops.rounds -> loops; autoalign -> '' (the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("autoalign.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "autoalign":
                found += [(node.lineno, f"autoalign.{alias.name}") for alias in node.names]
            elif node.module.startswith("autoalign."):
                found.append((node.lineno, node.module))
    return found


def test_every_module_belongs_to_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts <= set(RANK), f"add to LAYERS: {sorted(parts - set(RANK))}"


def test_no_import_runs_upward():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for line, module in imports_of(path):
            there = part_of(module)
            if RANK[there] > RANK[here]:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (layer {RANK[here]}) imports {module} (layer {RANK[there]})"
                )
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_check_sees_nested_and_from_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import autoalign.loops.rounds\nfrom autoalign import eval\ndef f():\n    from autoalign.cli import app\n"
    )
    assert imports_of(probe) == [(1, "autoalign.loops.rounds"), (2, "autoalign.eval"), (4, "autoalign.cli")]
