"""Device policy: models and batches go to the recipe's device (cuda when present, else cpu),
bf16 on a GPU with dtype=auto; nothing in src/ creates a tensor without saying where."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from autoalign.config import load_config
from autoalign.models.loading import load_model, resolve_device, resolve_dtype

PACKAGE = Path(__file__).parents[1] / "src/autoalign"
FACTORIES = {"tensor", "zeros", "ones", "full", "arange", "empty", "rand", "randn", "randint", "Generator", "as_tensor"}


def test_every_tensor_factory_in_src_names_its_device():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FACTORIES:
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                    if not any(k.arg == "device" for k in node.keywords):
                        missing.append(
                            f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: torch.{node.func.attr}(...) without device="
                        )
    assert not missing, "\n".join(missing)


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16


def test_device_is_an_execution_setting(tiny_model_dir):
    assert load_config(None, ["model.device=cpu"]).model.key() == load_config(None, []).model.key()
    loaded = load_model(tiny_model_dir, "auto", None, "cpu")
    assert loaded.model.device.type == "cpu" and next(loaded.model.parameters()).dtype == torch.float32
