"""A durable answer cache around any backend (the idea of lm-evaluation-harness's CachingLM).

A request's answer depends only on the model, the request's messages and the sampling parameters
(each sample's seed is derived from the request itself, see base.request_seed), so it can be
cached per request, whatever batch or stage asked for it. A stage whose key changed re-runs, but
only the requests it has not asked before reach the model: adding prompts to a recipe generates
the new prompts' answers only. Answers with a failed sample are not cached, so they are retried.
The HTTP backend keeps its own per-request cache, which also holds its request budget.
"""

from __future__ import annotations

from autoalign.generation.base import Generator, SamplingParams, Usage
from autoalign.generation.http_cache import ResponseCache, request_key
from autoalign.types import Candidate, Message


class CachedGenerator:
    """Generator protocol; model_key identifies the weights (a ModelRef's key)."""

    def __init__(self, inner: Generator, cache: ResponseCache, model_key: str):
        self.inner = inner
        self.cache = cache
        self.model_key = model_key

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def _key(self, messages: list[Message], params: SamplingParams) -> str:
        return request_key(self.model_key, {"messages": messages, **params.to_dict()})

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        keys = [self._key(messages, params) for messages in requests]
        results: list[list[Candidate] | None] = []
        for key in keys:
            cached = self.cache.get(key)
            results.append([Candidate.from_dict(c) for c in cached["candidates"]] if cached else None)
        misses = [i for i, r in enumerate(results) if r is None]
        hits = len(requests) - len(misses)
        if hits:
            self.usage.add(cache_hits=hits, answered=hits * params.n)
        if misses:
            for i, candidates in zip(misses, self.inner.generate([requests[i] for i in misses], params)):
                results[i] = candidates
                if all(c.finish_reason != "error" for c in candidates):
                    self.cache.put(keys[i], {"candidates": [c.to_dict() for c in candidates]})
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.inner.close()
        self.cache.close()
