"""What the hardware does fast, for settings whose "auto" value depends on it."""

from __future__ import annotations

import torch


def fast_bf16(device: torch.device) -> bool:
    """Whether the device multiplies bf16 matrices natively (else bf16 is emulated, and slow)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:  # oneDNN's own check for avx512_bf16 / AMX; private, so absent means "no"
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
