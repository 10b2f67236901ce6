"""Load a causal LM and its tokenizer from a local directory, ready for generation and training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from autoalign.models.bundled import TEMPLATES_DIR

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    path: Path

    @property
    def stop_token_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return sorted(set(ids))


def read_chat_template(spec: str) -> str:
    """A built-in template name (chatml, gemma) or a path to a Jinja file."""
    builtin = TEMPLATES_DIR / f"{spec}.jinja"
    if builtin.exists():
        return builtin.read_text()
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"chat template '{spec}' is neither built in ({[p.stem for p in TEMPLATES_DIR.glob('*.jinja')]}) nor a file"
        )
    return path.read_text()


def load_tokenizer(path: Path, chat_template: str | None = None) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path)
    if chat_template:
        tokenizer.chat_template = read_chat_template(chat_template)
    if not tokenizer.chat_template:
        raise ValueError(
            f"{path}: the tokenizer has no chat template (a base model?); set model.chat_template "
            "to a built-in name (chatml, gemma) or a Jinja file"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_length(path: str | Path) -> int | None:
    """The model's maximum sequence length from its config.json (None if it states none)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if value else None


def resolve_device(spec: str = "auto") -> torch.device:
    """ "auto": the GPU when there is one, else the CPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(spec)


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """ "auto": bfloat16 on a GPU (half the memory, fast matmuls), float32 on the CPU (bfloat16
    has no fast path on most CPUs)."""
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[spec]


def load_model(
    path: str | Path, dtype: str = "float32", chat_template: str | None = None, device: str = "auto"
) -> LoadedModel:
    path = Path(path)
    tokenizer = load_tokenizer(path, chat_template)
    target = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, target)).to(target)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, path=path)
