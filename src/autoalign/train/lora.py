"""LoRA adapters via peft: wrap before training, merge after, so every checkpoint is a plain
transformers model that `AutoModelForCausalLM.from_pretrained` (and vLLM) loads as is."""

from __future__ import annotations

import torch

from autoalign.config import LoraConfig


def wrap(model: torch.nn.Module, cfg: LoraConfig) -> torch.nn.Module:
    if not cfg.enabled:
        return model
    from peft import LoraConfig as PeftLoraConfig, get_peft_model

    peft_cfg = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_cfg)


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside peft's wrapper (its layers carry the adapters), or the model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Merge adapters into the base weights (a no-op for full fine-tuning)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
