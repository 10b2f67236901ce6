"""Prompts that cannot fit the model's context are data errors, found before any work.

A 5 MB prompt would otherwise reach generation after a full iteration and fail there with a
multi-terabyte attention allocation. Each prompt is rendered with the model's chat template and
must leave room for the answer: prompt tokens + max_new_tokens <= the model's context length.
Most prompts are far too short to matter, so only those whose UTF-8 size could reach the limit
are tokenized (a token covers at least one byte with byte-level and byte-fallback tokenizers).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from autoalign.chat import render_prompt
from autoalign.io import DataError
from autoalign.types import Message


def check_prompts_fit(
    tokenizer: PreTrainedTokenizerBase,
    context: int,
    located: list[tuple[str, list[Message]]],
    max_new_tokens: int,
    setting: str,
) -> None:
    """located: ("file:line", messages ending with the user turn). setting: the key holding
    max_new_tokens, named in the error so the user knows both ways out."""
    overhead = len(
        tokenizer(render_prompt(tokenizer, [{"role": "user", "content": ""}]), add_special_tokens=False).input_ids
    )
    budget = context - max_new_tokens
    for where, messages in located:
        size = sum(len(m["content"].encode("utf-8")) for m in messages)
        if size + overhead * len(messages) <= budget:
            continue
        tokens = len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False).input_ids)
        if tokens > budget:
            raise DataError(
                f"{where}: the prompt is {tokens} tokens; with {setting}={max_new_tokens} it does not fit the model's "
                f"context of {context} tokens (shorten or remove it)"
            )
