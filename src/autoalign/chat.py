"""One chat template everywhere: generation, judging and training render text through here."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from autoalign.types import Message


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> str:
    """The prompt text up to and including the assistant turn header."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_completion(tokenizer: PreTrainedTokenizerBase, messages: list[Message], response: str) -> tuple[str, str]:
    """(prompt_text, response_text) such that prompt_text + response_text is the whole chat with
    the assistant's answer, end-of-turn marker included, so training teaches the model to stop."""
    prompt = render_prompt(tokenizer, messages)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": response}], tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(prompt):
        raise ValueError("chat template renders the prompt differently with and without an answer")
    return prompt, full[len(prompt) :]
