"""One chat template everywhere: generation, judging and training render text through here.

Message text is data, never structure: a model's answer that contains a chat-template token
(`<|im_start|>`, `<end_of_turn>`, ...) is rendered with a zero-width space inside that token, so
re-rendering it for a judge or for training never opens a fake turn (issue 15, hostile text)."""

from __future__ import annotations

import re
import weakref

from transformers import PreTrainedTokenizerBase

from autoalign.types import Message

ZERO_WIDTH_SPACE = "\u200b"
TEMPLATE_MARKERS = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|</?(?:start_of_turn|end_of_turn|bos|eos|s)>|\[/?INST\]")
"""The turn markers of the common chat templates (ChatML, Gemma, Llama 2), for text sent to a
server whose tokenizer is not at hand (generation/openai.py)."""

_special_patterns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def defuse(text: str, markers: re.Pattern | None = TEMPLATE_MARKERS) -> str:
    """text with a zero-width space after the first character of every marker it contains."""
    if markers is None or not text:
        return text
    return markers.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> re.Pattern | None:
    """A pattern matching the tokenizer's special tokens (longest first), built once per tokenizer."""
    if tokenizer in _special_patterns:
        return _special_patterns[tokenizer]
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    tokens = set(tokenizer.all_special_tokens) | {t.content for t in added.values() if t.special}
    ordered = sorted((t for t in tokens if len(t) > 1), key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
    _special_patterns[tokenizer] = pattern
    return pattern


def as_text(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """text with the tokenizer's special tokens defused: it tokenizes as the characters it shows."""
    return defuse(text, special_tokens(tokenizer))


def _as_data(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> list[Message]:
    return [{**m, "content": as_text(tokenizer, m["content"])} for m in messages]


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> str:
    """The prompt text up to and including the assistant turn header."""
    return tokenizer.apply_chat_template(_as_data(tokenizer, messages), tokenize=False, add_generation_prompt=True)


def render_completion(tokenizer: PreTrainedTokenizerBase, messages: list[Message], response: str) -> tuple[str, str]:
    """(prompt_text, response_text) such that prompt_text + response_text is the whole chat with
    the assistant's answer, end-of-turn marker included, so training teaches the model to stop."""
    prompt = render_prompt(tokenizer, messages)
    answer = as_text(tokenizer, response)
    full = tokenizer.apply_chat_template(
        [*_as_data(tokenizer, messages), {"role": "assistant", "content": answer}],
        tokenize=False,
        add_generation_prompt=False,
    )
    if not full.startswith(prompt):
        raise ValueError("chat template renders the prompt differently with and without an answer")
    return prompt, full[len(prompt) :]
