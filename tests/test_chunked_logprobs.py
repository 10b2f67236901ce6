"""Answer log-probabilities computed a chunk of positions at a time (train/data.answer_logprobs)
equal the ones from the model's own full logits: values and gradients, plain, LoRA-wrapped and
on a Gemma-family model whose forward soft-caps its logits."""

from __future__ import annotations

import copy

import pytest
import torch

from autoalign.train.data import answer_logprobs, collate, encode_chat
from autoalign.train.losses import token_logprobs

CHATS = [
    ("Write a short poem about the sea, please.", "Waves fold over the sand and go back."),
    ("Hi", "Hello there, friend."),
    ("List three colours.", "Red, green and blue."),
]


def encoded(tokenizer):
    return [encode_chat(tokenizer, [{"role": "user", "content": q}], a, 256) for q, a in CHATS]


def full_logits_logprobs(model, examples, pad):
    """The reference: the model's forward over every position, then the plain loss maths."""
    batch = collate(examples, pad, "cpu")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return token_logprobs(logits, batch["labels"])


def grads_of(model, compute):
    model.zero_grad()
    logps, _ = compute()
    logps.sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(model, examples, pad, chunk_elements):
    reference, ref_mask = full_logits_logprobs(model, examples, pad)
    chunked, mask = answer_logprobs(model, examples, pad, chunk_elements=chunk_elements)
    # The chunked path starts at the batch's earliest answer position: the skipped columns are prompt.
    skipped = reference.shape[1] - chunked.shape[1]
    assert skipped > 0 and not ref_mask[:, :skipped].any()
    assert torch.equal(mask, ref_mask[:, skipped:])
    assert torch.allclose(chunked, reference[:, skipped:], atol=1e-5)
    assert (chunked[~mask] == 0).all() and int(mask.sum()) > 20
    want = grads_of(model, lambda: full_logits_logprobs(model, examples, pad))
    got = grads_of(model, lambda: answer_logprobs(model, examples, pad, chunk_elements=chunk_elements))
    assert want.keys() == got.keys() and len(got) > 0
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("positions_per_chunk", [1, 5, 10_000])
def test_chunked_answer_logprobs_equal_full_logits(tiny_loaded, positions_per_chunk):
    model = copy.deepcopy(tiny_loaded.model).train()
    model.config.use_cache = False
    vocab = model.get_output_embeddings().weight.shape[0]
    chunk_elements = positions_per_chunk * len(CHATS) * vocab
    assert_same(model, encoded(tiny_loaded.tokenizer), tiny_loaded.tokenizer.pad_token_id, chunk_elements)


def test_chunked_answer_logprobs_through_lora(tiny_loaded):
    from autoalign.config import LoraConfig
    from autoalign.train import lora

    model = lora.wrap(copy.deepcopy(tiny_loaded.model), LoraConfig(enabled=True, r=4, target_modules=["q_proj"]))
    for name, param in model.named_parameters():  # non-zero B: the adapters change the output
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    vocab = tiny_loaded.model.get_output_embeddings().weight.shape[0]
    assert_same(model, encoded(tiny_loaded.tokenizer), tiny_loaded.tokenizer.pad_token_id, 3 * len(CHATS) * vocab)


def test_chunked_answer_logprobs_apply_gemma_softcapping(tiny_loaded):
    from conftest import TINY_DIMS
    from transformers import Gemma2Config, Gemma2ForCausalLM

    tokenizer = tiny_loaded.tokenizer
    config = Gemma2Config(
        vocab_size=len(tokenizer),
        **TINY_DIMS,
        head_dim=8,
        final_logit_softcapping=0.05,  # small: capping changes every log-probability visibly
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config).train()
    examples = encoded(tokenizer)
    without_cap = copy.deepcopy(model)
    without_cap.config.final_logit_softcapping = None
    capped, _ = answer_logprobs(model, examples, tokenizer.pad_token_id)
    uncapped, _ = answer_logprobs(without_cap, examples, tokenizer.pad_token_id)
    assert (capped - uncapped).abs().max() > 0.01
    assert_same(model, examples, tokenizer.pad_token_id, 2 * len(CHATS) * config.vocab_size)


def test_a_batch_without_answer_tokens_gives_empty_log_probs(tiny_loaded):
    from autoalign.train.data import Encoded
    from autoalign.train.losses import IGNORE_INDEX, mean_nll

    prompt_only = Encoded(input_ids=[5, 6, 7, 8], labels=[IGNORE_INDEX] * 4, truncated=False)
    with torch.no_grad():
        logps, mask = answer_logprobs(tiny_loaded.model, [prompt_only], tiny_loaded.tokenizer.pad_token_id)
    assert logps.shape == mask.shape == (1, 0)
    loss, metrics = mean_nll(logps, mask)
    assert loss.item() == 0 and metrics["tokens"] == 0
