"""The Generator contract shared by every backend (in-process transformers, HTTP servers, and
later managed llama.cpp / vLLM servers): generate, count what it did, close. Backends are
registered by name in autoalign/registry.py BACKENDS."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from autoalign.config import SamplingConfig
from autoalign.types import Candidate, Message


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 160
    seed: int = 0
    """The run's seed; each sample's own seed is request_seed(seed, its messages, its index)."""
    top_logprobs: int = 0
    """Also return, per generated token, this many most likely alternatives (judges use them)."""
    assistant_prefix: str = ""
    """Text the answer is made to start with (the prompt ends with the assistant turn's header and
    then this text); the returned text is what follows it. Single-pass judges start the answer
    with their verdict line's lead-in ("Score:") and read the next token's distribution."""

    def to_dict(self) -> dict:
        """All fields; an empty assistant_prefix is left out, so answers cached before it existed
        keep their keys."""
        fields = asdict(self)
        if not fields["assistant_prefix"]:
            del fields["assistant_prefix"]
        return fields


def request_seed(seed: int, messages: list[Message], sample_index: int = 0) -> int:
    """The seed of one sample: a function of the run's seed, the request's own content and which
    of its n samples it is, never of the batch or chunk it happens to run in. So a stage can run
    in any batch size, be resumed in other chunks, or be cached per request, and draw the same
    random stream for every sample."""
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return (seed * 1_000_003 + int(hashlib.sha256(blob).hexdigest()[:12], 16) + sample_index) % (2**31 - 1)


def sampling_params(cfg: SamplingConfig, n: int, seed: int, top_logprobs: int = 0) -> SamplingParams:
    """A recipe's sampling settings as one request's parameters."""
    return SamplingParams(
        n=n,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
        top_logprobs=top_logprobs,
    )


class Usage:
    """Thread-safe counters for the run metrics."""

    FIELDS = ("requests", "retries", "cache_hits", "answered", "failed", "prompt_tokens", "completion_tokens")

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, **amounts: int) -> None:
        with self._lock:
            self.counts.update(amounts)

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**{f: self.counts.get(f, 0) for f in self.FIELDS}, "errors": dict(self.errors)}


ZERO_USAGE = {**{f: 0 for f in Usage.FIELDS}, "errors": {}}


def usage_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out = {f: after[f] - before[f] for f in Usage.FIELDS}
    kinds = set(before["errors"]) | set(after["errors"])
    out["errors"] = {
        k: after["errors"].get(k, 0) - before["errors"].get(k, 0)
        for k in sorted(kinds)
        if after["errors"].get(k, 0) != before["errors"].get(k, 0)
    }
    return out


class Generator(Protocol):
    label: str
    usage: Usage
    """Counters of what the backend did: requests, answers, failures, tokens (and for HTTP
    backends retries and cache hits)."""

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        """Return params.n candidates for each request (a chat message list), in order."""
        ...

    def close(self) -> None:
        """Free what the backend holds (connections, a server process); the pool calls it."""
        ...


class MeteredGenerator:
    """Another generator, counting the tokens generated through it: what one method costs when
    several share a model (the pool owns and closes the inner generator)."""

    def __init__(self, inner: Generator):
        self.inner, self.label, self.usage = inner, inner.label, inner.usage
        self.tokens = 0

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        out = self.inner.generate(requests, params)
        self.tokens += sum(c.num_tokens for group in out for c in group)
        return out

    def close(self) -> None:
        pass
