"""The training optimiser and memory settings: fused fp32 AdamW, 8-bit AdamW (bitsandbytes) and
returning freed heap pages to the OS."""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from autoalign.config import DPOConfig
from autoalign.data import load_ift
from autoalign.models.loading import load_model
from autoalign.train.dpo import train_dpo
from autoalign.train.loop import make_optimizer
from autoalign.train.memory import release_freed_memory
from autoalign.types import Pair
from test_training import Crash, CrashAfterSaves, Resuming, _assert_same, _weights

FIX = Path(__file__).parent / "fixtures"
LR = 1e-2


def _parameter(seed: int = 0) -> torch.nn.Parameter:
    # 8192 elements: bitsandbytes keeps tensors under 4096 elements in 32-bit state.
    return torch.nn.Parameter(torch.randn(64, 128, generator=torch.Generator().manual_seed(seed)))


def test_fp32_adamw_uses_the_fused_kernel_on_cpu():
    optimizer = make_optimizer([_parameter()], DPOConfig(learning_rate=LR))
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]


def test_8bit_adamw_first_step_is_adams_and_later_steps_stay_close():
    """Step 1 of Adam (bias-corrected, no weight decay) moves each weight by lr * g / (|g| + eps),
    computed by hand; the 8-bit moments are quantised only after the update, so step 1 is exact
    for both. Over 20 steps with fresh gradients the 8-bit run stays within 3% of the fp32 one's
    total movement, and its moments are stored as bytes."""
    start = _parameter()
    gradients = [torch.randn(64, 128, generator=torch.Generator().manual_seed(100 + i)) for i in range(20)]
    finals = {}
    for name in ("adamw", "adamw_8bit"):
        param = torch.nn.Parameter(start.detach().clone())
        optimizer = make_optimizer([param], DPOConfig(learning_rate=LR, optimizer=name))
        for step, gradient in enumerate(gradients):
            param.grad = gradient.clone()
            optimizer.step()
            if step == 0:
                by_hand = start - LR * gradient / (gradient.abs() + 1e-8)
                assert torch.allclose(param.detach(), by_hand, atol=1e-6), name
        finals[name] = (param.detach(), optimizer.state[param])
    (fp32, _), (eight_bit, state) = finals["adamw"], finals["adamw_8bit"]
    assert state["state1"].dtype == state["state2"].dtype == torch.uint8
    movement = (fp32 - start).norm()
    assert (eight_bit - fp32).norm() < 0.03 * movement


def _pairs() -> list[Pair]:
    conversations = load_ift(str(FIX / "ift_small.jsonl"))
    return [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[i - 1][-1]["content"], 5, 1, "test")
        for i, c in enumerate(conversations)
    ]


def test_8bit_full_dpo_resumes_bit_identically_and_releasing_memory_changes_nothing(tiny_model_dir, tmp_path):
    """Full fine-tuning with 8-bit moments: the run that hands freed memory back before every
    backward, crashes after 3 checkpoints and resumes ends with exactly the history and weights
    of a plain uninterrupted run; the embedding's moments were bytes."""
    pairs = _pairs()
    settings = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 2, "grad_accum": 1, "max_length": 128}
    plain = DPOConfig.model_validate(settings | {"optimizer": "adamw_8bit"})
    model, straight_history, _ = train_dpo(load_model(tiny_model_dir), pairs, plain, seed=1)
    straight = _weights(model)
    assert straight_history[-1]["loss"] < straight_history[0]["loss"]

    releasing = DPOConfig.model_validate(settings | {"optimizer": "adamw_8bit", "release_freed_memory": True})
    ref, state_dir = tmp_path / "reference.json", tmp_path / "train_state"
    with pytest.raises(Crash):
        train_dpo(load_model(tiny_model_dir), pairs, releasing, 1, ref, CrashAfterSaves(state_dir, 3))
    saved = torch.load(state_dir / "train_state.pt", weights_only=True)["optimizer"]["state"]
    assert any(t.dtype == torch.uint8 for t in _tensors(saved))

    resuming = Resuming(state_dir)
    model, resumed_history, _ = train_dpo(load_model(tiny_model_dir), pairs, releasing, 1, ref, resuming)
    assert resuming.resumed_at == 3
    assert resumed_history == straight_history
    _assert_same(_weights(model), straight)


def _tensors(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    return [t for value in tree.values() for t in _tensors(value)] if isinstance(tree, dict) else []


def _resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def test_release_freed_memory_gives_free_heap_pages_back():
    """Blocks below glibc's mmap threshold live in the heap; freed, they stay resident until
    trimmed. 256 touched 64 KB blocks (under the smallest threshold, 128 KB) freed beneath a
    block still in use (so free() itself cannot shrink the heap's top) leave 16 MB that
    release_freed_memory returns."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 1024
    blocks = [libc.malloc(size) for _ in range(256)]
    keeper = libc.malloc(size)
    for block in blocks:
        ctypes.memset(block, 1, size)
    for block in blocks:
        libc.free(block)
    before = _resident_bytes()
    assert release_freed_memory()
    released = before - _resident_bytes()
    libc.free(keeper)
    assert released > 12 * 2**20


def test_8bit_adamw_is_keyed_and_checked_when_the_recipe_is_read(monkeypatch):
    assert DPOConfig(optimizer="adamw_8bit").key() != DPOConfig().key()
    assert DPOConfig(release_freed_memory=True).key() == DPOConfig().key()  # same results, same key
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else real(name))
    with pytest.raises(ValidationError, match=r"adamw_8bit needs bitsandbytes: pip install 'autoalign\[lowmem\]'"):
        DPOConfig(optimizer="adamw_8bit")
