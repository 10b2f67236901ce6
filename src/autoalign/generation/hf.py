"""In-process transformers generation, batched.

Requests are rendered with the model's chat template, sorted by length (less padding), left
padded and decoded in batches by a small loop over the model's KV cache:

- the token prefix that all prompts of a batch share (the chat template's system turn, the
  judge rubric, the few-shot instructions) is run through the model once and its KV cache
  copied to every row; only the differing suffixes are prefilled per row;
- for n > 1 the prompt's cache is then copied n times, so the n candidates share one prefill
  instead of paying for n;
- a row that reaches a stop token leaves the batch (its cache rows are dropped), so a batch
  costs what its rows actually generate, not n_rows x the longest answer;
- each sampled token's log-probability under the model (before temperature) is kept, and on
  request the top-k alternatives at each step.

Sampling uses transformers' own temperature and top-p warpers, and each row (one sample of one
request) draws from its own random generator seeded by request_seed, so a sample does not depend
on the batch it runs in.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper
from transformers.cache_utils import Cache

from autoalign.chat import render_prompt
from autoalign.generation.base import SamplingParams, Usage, request_seed
from autoalign.generation.kv_cache import new_cache
from autoalign.io import DataError
from autoalign.models.loading import LoadedModel
from autoalign.types import Candidate, Message


MIN_SHARED_PREFIX = 16  # below this, a separate prefix forward pass costs more than it saves


def shared_prefix_length(token_lists: list[list[int]]) -> int:
    """Length of the common token prefix, leaving every row at least one token of its own
    (the last prompt token must be run per row to get that row's next-token logits)."""
    limit = min(len(t) for t in token_lists) - 1
    first = token_lists[0]
    length = 0
    while length < limit and all(t[length] == first[length] for t in token_lists):
        length += 1
    return length


class HFGenerator:
    def __init__(self, loaded: LoadedModel, batch_size: int = 8):
        self.loaded = loaded
        self.batch_size = batch_size
        self.usage = Usage()

    @property
    def label(self) -> str:
        return str(self.loaded.path)

    def close(self) -> None:
        """The model belongs to the pool, which frees it; nothing else is held."""

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        tokenizer = self.loaded.tokenizer
        texts = [render_prompt(tokenizer, messages) + params.assistant_prefix for messages in requests]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[Candidate]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            seeds = [request_seed(params.seed, requests[i], k) for i in batch for k in range(params.n)]
            candidates = self._generate_batch([texts[i] for i in batch], params, seeds)
            for i, cands in zip(batch, candidates):
                results[i] = cands
        answers = [c for cands in results for c in cands]
        self.usage.add(
            requests=len(requests), answered=len(answers), completion_tokens=sum(c.num_tokens for c in answers)
        )
        return results

    @torch.no_grad()
    def _generate_batch(self, texts: list[str], params: SamplingParams, seeds: list[int]) -> list[list[Candidate]]:
        """seeds: one per row (request i's sample k at row i * n + k)."""
        token_lists = self.loaded.tokenizer(texts, add_special_tokens=False).input_ids
        self._check_fits(token_lists, params.max_new_tokens)
        tokens, logprobs, top, finished = self._decode(token_lists, params, seeds)
        rows = [self._to_candidate(t, lp, tp, f) for t, lp, tp, f in zip(tokens, logprobs, top, finished)]
        n = params.n
        return [rows[i * n : (i + 1) * n] for i in range(len(texts))]

    def _check_fits(self, token_lists: list[list[int]], max_new_tokens: int) -> None:
        """The last guard against a prompt past the model's context (data checks catch most
        earlier): fail with a clear message instead of attempting a huge allocation."""
        limit = getattr(self.loaded.model.config, "max_position_embeddings", None)
        longest = max(len(t) for t in token_lists)
        if limit and longest + max_new_tokens > limit:
            raise DataError(
                f"a prompt of {longest} tokens + max_new_tokens {max_new_tokens} exceeds the context of "
                f"{self.loaded.path} ({limit} tokens)"
            )

    def _prefill(self, token_lists: list[list[int]]) -> tuple[Cache, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the prompts through the model: (cache, last logits, attention mask, positions).

        Layout per row: [shared prefix][left padding][own suffix]; padding is masked out and
        positions count only real tokens, so every row sees exactly its own prompt."""
        model, device = self.loaded.model, self.loaded.model.device
        shared = shared_prefix_length(token_lists) if len(token_lists) > 1 else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        cache = new_cache(model.config)
        rows = len(token_lists)
        if shared:
            prefix = torch.tensor([token_lists[0][:shared]], device=device)
            model(input_ids=prefix, past_key_values=cache, use_cache=True)
            cache.batch_repeat_interleave(rows)
        suffixes = [t[shared:] for t in token_lists]
        width = max(len(t) for t in suffixes)
        pad = self.loaded.tokenizer.pad_token_id
        suffix_ids = torch.tensor([[pad] * (width - len(t)) + t for t in suffixes], device=device)
        suffix_mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in suffixes], device=device)
        mask = torch.cat([suffix_mask.new_ones(rows, shared), suffix_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=suffix_ids,
            attention_mask=mask,
            position_ids=positions[:, shared:],
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1, :]
        return cache, logits, mask, positions

    def _decode(self, token_lists: list[list[int]], params: SamplingParams, seeds: list[int]):
        model, n, device = self.loaded.model, params.n, self.loaded.model.device
        rngs = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        warpers = LogitsProcessorList()
        if params.temperature > 0:
            warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_p < 1:
                warpers.append(TopPLogitsWarper(params.top_p))
        stops = torch.tensor(self.loaded.stop_token_ids, device=device)
        cache, logits, mask, positions = self._prefill(token_lists)
        if n > 1:  # share the prefill: copy cache and state n times
            cache.batch_repeat_interleave(n)
            logits, mask, positions = (x.repeat_interleave(n, dim=0) for x in (logits, mask, positions))
        next_position = positions[:, -1:] + 1

        num_rows = logits.shape[0]
        active = torch.arange(num_rows, device=device)
        tokens: list[list[int]] = [[] for _ in range(num_rows)]
        token_logprobs: list[list[float]] = [[] for _ in range(num_rows)]
        top: list[list[tuple[list[int], list[float]]]] = [[] for _ in range(num_rows)]
        stopped = [False] * num_rows
        for step in range(params.max_new_tokens):
            logits = logits.float()
            chosen = self._pick(logits, warpers, [rngs[r] for r in active.tolist()], params.temperature)
            all_logprobs = torch.log_softmax(logits, dim=-1)
            chosen_logprobs = all_logprobs.gather(1, chosen[:, None]).squeeze(1)
            done = torch.isin(chosen, stops)
            for row, token, lp, is_done in zip(
                active.tolist(), chosen.tolist(), chosen_logprobs.tolist(), done.tolist()
            ):
                tokens[row].append(token)
                token_logprobs[row].append(lp)
                stopped[row] = is_done
            if params.top_logprobs:
                values, ids = all_logprobs.topk(params.top_logprobs, dim=-1)
                for row, row_ids, row_values in zip(active.tolist(), ids.tolist(), values.tolist()):
                    top[row].append((row_ids, row_values))
            if done.all() or step == params.max_new_tokens - 1:
                break
            if done.any():  # finished rows leave the batch
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                active, chosen, mask, next_position = active[keep], chosen[keep], mask[keep], next_position[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            ).logits[:, -1, :]
            next_position = next_position + 1
        return tokens, token_logprobs, top, stopped

    @staticmethod
    def _pick(
        logits: torch.Tensor, warpers: LogitsProcessorList, rngs: list[torch.Generator], temperature: float
    ) -> torch.Tensor:
        """One token per row; row r samples with its own generator rngs[r]."""
        if temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(warpers(None, logits.clone()), dim=-1)
        return torch.cat([torch.multinomial(row, num_samples=1, generator=rng) for row, rng in zip(probs, rngs)])

    def _to_candidate(
        self, tokens: list[int], logprobs: list[float], top: list[tuple[list[int], list[float]]], stopped: bool
    ) -> Candidate:
        tokenizer = self.loaded.tokenizer
        kept = tokens[:-1] if stopped else tokens  # the stop token is counted, not shown
        text = tokenizer.decode(kept, skip_special_tokens=True).strip()
        extra = {}
        if top:
            extra["tokens"] = [tokenizer.decode([t]) for t in tokens]
            extra["top_logprobs"] = [{tokenizer.decode([i]): v for i, v in zip(ids, values)} for ids, values in top]
        return Candidate(
            text=text, num_tokens=len(tokens), finish_reason="stop" if stopped else "length", logprobs=logprobs, **extra
        )


def in_process(pool, ref, batch_size: int) -> HFGenerator:
    """The "transformers" backend: the pool's loaded copy of the model, decoded here."""
    return HFGenerator(pool.get(ref), batch_size=batch_size)
