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
- continuous batching: waiting requests join the running batch as rows leave it (their caches
  joined to the running one, padded on the left), so the batch stays full instead of draining
  down to its slowest row;
- each sampled token's log-probability under the model (before temperature) is kept, and on
  request the top-k alternatives at each step.

Sampling uses transformers' own temperature and top-p warpers, and each row (one sample of one
request) draws from its own random generator seeded by request_seed, so a sample does not depend
on the batch it runs in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper
from transformers.cache_utils import Cache

from autoalign.chat import render_prompt
from autoalign.generation.base import SamplingParams, Usage, request_seed
from autoalign.generation.kv_cache import can_join, join_rows, new_cache
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
        tokenizer, n = self.loaded.tokenizer, params.n
        texts = [render_prompt(tokenizer, messages) + params.assistant_prefix for messages in requests]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[Candidate]] = [[] for _ in texts]
        if texts:
            token_lists = tokenizer([texts[i] for i in order], add_special_tokens=False).input_ids
            self._check_fits(token_lists, params.max_new_tokens)
            seeds = [request_seed(params.seed, requests[i], k) for i in order for k in range(n)]
            rows = [self._to_candidate(*row) for row in zip(*self._decode(token_lists, params, seeds))]
            for j, i in enumerate(order):
                results[i] = rows[j * n : (j + 1) * n]
        answers = [c for cands in results for c in cands]
        self.usage.add(
            requests=len(requests), answered=len(answers), completion_tokens=sum(c.num_tokens for c in answers)
        )
        return results

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

    def _start(self, token_lists: list[list[int]], n: int, first_row: int) -> Running:
        """Prefill these prompts and copy each one's state n times (the n samples share one
        prefill): rows first_row, first_row + 1, ... in request-major order."""
        cache, logits, mask, positions = self._prefill(token_lists)
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits, mask, positions = (x.repeat_interleave(n, dim=0) for x in (logits, mask, positions))
        rows = torch.arange(first_row, first_row + logits.shape[0], device=logits.device)
        return Running(cache, logits, mask, positions[:, -1:] + 1, rows)

    @torch.no_grad()
    def _decode(self, token_lists: list[list[int]], params: SamplingParams, seeds: list[int]):
        """Every request's rows (request i's sample k is row i * n + k, seeded by seeds[row]),
        decoded with continuous batching: up to batch_size requests' rows run together, a row
        that stops (a stop token, or max_new_tokens) leaves at once, and waiting requests join
        the running batch when a quarter of it (or the last of them) fits, instead of waiting
        for its slowest row. Models whose cache cannot take new rows (sliding-window layers)
        start the next requests when the batch is empty."""
        model, n, device = self.loaded.model, params.n, self.loaded.model.device
        rngs = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        warpers = LogitsProcessorList()
        if params.temperature > 0:
            warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_p < 1:
                warpers.append(TopPLogitsWarper(params.top_p))
        stops = torch.tensor(self.loaded.stop_token_ids, device=device)
        num_rows = len(token_lists) * n
        tokens: list[list[int]] = [[] for _ in range(num_rows)]
        token_logprobs: list[list[float]] = [[] for _ in range(num_rows)]
        top: list[list[tuple[list[int], list[float]]]] = [[] for _ in range(num_rows)]
        stopped = [False] * num_rows
        admitted, batch = 0, None
        while admitted < len(token_lists) or batch is not None:
            free = self.batch_size - (0 if batch is None else math.ceil(len(batch.rows) / n))
            joining = min(free, len(token_lists) - admitted)
            worth_it = joining >= max(1, self.batch_size // 4) or admitted + joining == len(token_lists)
            if joining > 0 and worth_it and (batch is None or can_join(batch.cache)):
                new = self._start(token_lists[admitted : admitted + joining], n, admitted * n)
                batch = new if batch is None else batch.join(new)
                admitted += joining
            logits = batch.logits.float()
            rows = batch.rows.tolist()
            chosen = self._pick(logits, warpers, [rngs[r] for r in rows], params.temperature)
            all_logprobs = torch.log_softmax(logits, dim=-1)
            chosen_logprobs = all_logprobs.gather(1, chosen[:, None]).squeeze(1)
            hit_stop = torch.isin(chosen, stops).tolist()
            for row, token, lp, is_stop in zip(rows, chosen.tolist(), chosen_logprobs.tolist(), hit_stop):
                tokens[row].append(token)
                token_logprobs[row].append(lp)
                stopped[row] = is_stop
            if params.top_logprobs:
                values, ids = all_logprobs.topk(params.top_logprobs, dim=-1)
                for row, row_ids, row_values in zip(rows, ids.tolist(), values.tolist()):
                    top[row].append((row_ids, row_values))
            keep = [i for i, row in enumerate(rows) if not stopped[row] and len(tokens[row]) < params.max_new_tokens]
            if not keep:
                batch = None
                continue
            if len(keep) < len(rows):  # finished rows leave the batch
                batch = batch.select(torch.tensor(keep, device=device))
                chosen = chosen[keep]
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones(batch.mask.shape[0], 1)], dim=1)
            batch.logits = model(
                input_ids=chosen[:, None],
                attention_mask=batch.mask,
                position_ids=batch.next_position,
                past_key_values=batch.cache,
                use_cache=True,
            ).logits[:, -1, :]
            batch.next_position = batch.next_position + 1
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


@dataclass
class Running:
    """The rows being decoded: their KV cache, next-token logits, attention mask over the cache
    (0 on padding), next position and row numbers (request i's sample k is row i * n + k)."""

    cache: Cache
    logits: torch.Tensor
    mask: torch.Tensor
    next_position: torch.Tensor
    rows: torch.Tensor

    def select(self, keep: torch.Tensor) -> Running:
        self.cache.batch_select_indices(keep)
        return Running(self.cache, self.logits[keep], self.mask[keep], self.next_position[keep], self.rows[keep])

    def join(self, other: Running) -> Running:
        """These rows and other's in one batch, the shorter side's cache and mask padded on the left."""
        length = join_rows(self.cache, other.cache)
        masks = [torch.cat([m.new_zeros(m.shape[0], length - m.shape[1]), m], dim=1) for m in (self.mask, other.mask)]
        return Running(
            self.cache,
            torch.cat([self.logits, other.logits]),
            torch.cat(masks),
            torch.cat([self.next_position, other.next_position]),
            torch.cat([self.rows, other.rows]),
        )


def in_process(pool, ref, batch_size: int) -> HFGenerator:
    """The "transformers" backend: the pool's loaded copy of the model, decoded here."""
    return HFGenerator(pool.get(ref), batch_size=batch_size)
