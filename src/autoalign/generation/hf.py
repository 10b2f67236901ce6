"""In-process transformers generation, batched.

Requests are rendered with the model's chat template, sorted by length (less padding), left
padded and generated in batches. When n > 1 the prompt is run through the model once and its
KV cache is copied n times, so the n candidates share one prefill instead of paying for n.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, GenerationConfig

from autoalign.chat import render_prompt
from autoalign.generation.base import SamplingParams
from autoalign.models.loading import LoadedModel
from autoalign.types import Candidate, Message


class HFGenerator:
    def __init__(self, loaded: LoadedModel, batch_size: int = 8):
        self.loaded = loaded
        self.batch_size = batch_size

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        tokenizer = self.loaded.tokenizer
        texts = [render_prompt(tokenizer, messages) for messages in requests]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[Candidate]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            # Seed per batch, so a batch's samples do not depend on what ran before it.
            candidates = self._generate_batch([texts[i] for i in batch], params, seed=params.seed + start)
            for i, cands in zip(batch, candidates):
                results[i] = cands
        return results

    def _generation_config(self, params: SamplingParams) -> GenerationConfig:
        sample = params.temperature > 0
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=0 if sample else None,
            pad_token_id=self.loaded.tokenizer.pad_token_id,
            eos_token_id=self.loaded.stop_token_ids,
        )

    @torch.no_grad()
    def _generate_batch(self, texts: list[str], params: SamplingParams, seed: int) -> list[list[Candidate]]:
        model, tokenizer = self.loaded.model, self.loaded.tokenizer
        tokenizer.padding_side = "left"
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids, mask = enc.input_ids.to(model.device), enc.attention_mask.to(model.device)
        n = params.n
        torch.manual_seed(seed)
        config = self._generation_config(params)
        if n > 1 and ids.shape[1] > 1:
            cache = self._prefill(ids[:, :-1], mask[:, :-1])
            cache.batch_repeat_interleave(n)
            out = model.generate(
                input_ids=ids.repeat_interleave(n, dim=0),
                attention_mask=mask.repeat_interleave(n, dim=0),
                past_key_values=cache,
                generation_config=config,
            )
        else:
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        new_tokens = out[:, ids.shape[1] :].tolist()
        rows = [self._to_candidate(tokens) for tokens in new_tokens]
        return [rows[i * n : (i + 1) * n] for i in range(len(texts))]

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> DynamicCache:
        """Run all but the last prompt token once; generate() continues from this cache."""
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.loaded.model.config)
        self.loaded.model(input_ids=ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        return cache

    def _to_candidate(self, tokens: list[int]) -> Candidate:
        stops = set(self.loaded.stop_token_ids)
        end = next((i for i, t in enumerate(tokens) if t in stops), None)
        if end is None:
            kept, finish, count = tokens, "length", len(tokens)
        else:
            kept, finish, count = tokens[:end], "stop", end + 1
        text = self.loaded.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Candidate(text=text, num_tokens=count, finish_reason=finish)
