"""What every stage that generates shares: the first error of a failed row, and the remote
(HTTP) usage a stage caused."""

from __future__ import annotations

from autoalign.generation.base import ZERO_USAGE, usage_delta
from autoalign.runtime.pool import ModelPool


def first_error(errors) -> str | None:
    return next((e for e in errors if e), None)


def remote_usage_since(pool: ModelPool, before: dict[str, dict]) -> dict:
    """{"remote": {endpoint: requests, retries, cache hits, failures, tokens}} for the calls made
    since `before`; {} when no endpoint was used."""
    deltas = {}
    for label, after in pool.remote_usage().items():
        delta = usage_delta(before.get(label, ZERO_USAGE), after)
        if delta["requests"] or delta["cache_hits"] or delta["failed"]:
            deltas[label] = delta
    return {"remote": deltas} if deltas else {}
