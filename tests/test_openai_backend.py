"""The OpenAI-compatible backend against a local server that injects faults on a schedule:
retries and backoff, Retry-After, failures recorded per item, the cache, the budget, the bound
on concurrency, and the API key kept out of everything written to disk."""

from __future__ import annotations

import time

import pytest

from autoalign.config import EndpointConfig
from autoalign.generation.base import SamplingParams, request_seed
from autoalign.generation.http_cache import ResponseCache
from autoalign.generation.openai import EndpointConfigError, OpenAIGenerator, retry_after_seconds
from fault_server import FaultServer

PARAMS = SamplingParams(n=1, temperature=0.0, max_new_tokens=16, seed=0)


def endpoint(server: FaultServer, **extra) -> EndpointConfig:
    settings = {
        "base_url": server.base_url,
        "model": "test-model",
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 0.5,
        "max_retries": 3,
        **extra,
    }
    return EndpointConfig(**settings)


def ask(*texts: str) -> list[list[dict]]:
    return [[{"role": "user", "content": t}] for t in texts]


def test_every_fault_is_retried_until_answered(tmp_path):
    schedule = ["429", "500", "malformed", "timeout", "503"]
    with FaultServer(schedule, slow_seconds=1.5) as server:
        gen = OpenAIGenerator(endpoint(server, max_concurrency=1, max_retries=5), ResponseCache(tmp_path / "c.sqlite"))
        out = gen.generate(ask("a"), PARAMS)
    assert out[0][0].text == "Answer to: a" and out[0][0].finish_reason == "stop"
    usage = gen.usage.snapshot()
    assert usage["requests"] == 6 and usage["retries"] == 5 and usage["answered"] == 1 and usage["failed"] == 0
    assert usage["errors"] == {"http_429": 1, "http_500": 1, "malformed": 1, "timeout": 1, "http_503": 1}
    assert usage["completion_tokens"] == 3 and usage["prompt_tokens"] == 10


def test_exhausted_retries_fail_only_that_item_with_the_reason(tmp_path):
    # Concurrency 1 keeps the schedule's order: the first item meets four 500s (1 try + 3 retries).
    with FaultServer(["500"] * 4) as server:
        gen = OpenAIGenerator(endpoint(server, max_concurrency=1), ResponseCache(tmp_path / "c.sqlite"))
        out = gen.generate(ask("first", "second", "third"), PARAMS)
    assert out[0][0].finish_reason == "error" and out[0][0].text == "" and "http_500" in out[0][0].error
    assert [c[0].text for c in out[1:]] == ["Answer to: second", "Answer to: third"]
    usage = gen.usage.snapshot()
    assert usage["answered"] == 2 and usage["failed"] == 1 and usage["requests"] == 6


def test_client_error_is_not_retried(tmp_path):
    with FaultServer(["400"]) as server:
        gen = OpenAIGenerator(endpoint(server, max_concurrency=1), None)
        out = gen.generate(ask("bad", "good"), PARAMS)
    assert (
        out[0][0].error.startswith(f"test-model @ {server.base_url}: http_400") and out[1][0].text == "Answer to: good"
    )
    assert gen.usage.snapshot()["requests"] == 2


def test_retry_after_is_honoured(tmp_path):
    with FaultServer(["429"], retry_after=1) as server:
        gen = OpenAIGenerator(endpoint(server, backoff_max_seconds=5), None)
        started = time.perf_counter()
        out = gen.generate(ask("a"), PARAMS)
        elapsed = time.perf_counter() - started
    assert out[0][0].text == "Answer to: a"
    assert 1.0 <= elapsed < 3.0  # waited the server's 1 s, not the 0.01 s backoff


def test_retry_after_parsing():
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert retry_after_seconds("soon") is None


def test_cache_means_a_resumed_run_never_pays_twice(tmp_path):
    with FaultServer() as server:
        cfg = endpoint(server)
        params = SamplingParams(n=2, temperature=0.7, max_new_tokens=16, seed=5)
        first = OpenAIGenerator(cfg, ResponseCache(tmp_path / "c.sqlite")).generate(ask("a", "b"), params)
        assert len(server.bodies) == 4
        seeds = {(b["messages"][-1]["content"], b["seed"]) for b in server.bodies}
        # Each sample has its own seed: request_seed(run seed, the request, the sample's index).
        assert (
            seeds == {(m[-1]["content"], request_seed(5, m, k)) for m in ask("a", "b") for k in range(2)}
            and len(seeds) == 4
        )
        again = OpenAIGenerator(cfg, ResponseCache(tmp_path / "c.sqlite"))  # a new process, same run
        second = again.generate(ask("a", "b"), params)
        assert len(server.bodies) == 4
    assert second == first
    assert again.usage.snapshot()["cache_hits"] == 4 and again.usage.snapshot()["requests"] == 0


def test_budget_caps_requests_across_resumes(tmp_path):
    with FaultServer() as server:
        cfg = endpoint(server, max_requests=3, max_concurrency=1)
        out = OpenAIGenerator(cfg, ResponseCache(tmp_path / "c.sqlite")).generate(
            ask("a", "b"), SamplingParams(n=2, temperature=0.7)
        )
        errors = [c.error for cands in out for c in cands]
        assert errors.count(None) == 3 and sum("budget" in (e or "") for e in errors) == 1
        later = OpenAIGenerator(cfg, ResponseCache(tmp_path / "c.sqlite")).generate(ask("c"), PARAMS)
        assert "budget" in later[0][0].error
        assert len(server.bodies) == 3


def test_concurrency_is_bounded():
    with FaultServer(delay=0.1) as server:
        gen = OpenAIGenerator(endpoint(server, max_concurrency=3, timeout_seconds=5), None)
        out = gen.generate(ask(*[f"q{i}" for i in range(12)]), PARAMS)
    assert [c[0].text for c in out] == [f"Answer to: q{i}" for i in range(12)]  # order kept
    assert server.max_in_flight == 3


def test_concurrency_is_bounded_across_calls_made_side_by_side():
    """Stages hand a server several chunks at once (ModelPool.in_flight): the bound holds for the
    generator, not per call."""
    from concurrent.futures import ThreadPoolExecutor

    with FaultServer(delay=0.1) as server:
        gen = OpenAIGenerator(endpoint(server, max_concurrency=3, timeout_seconds=5), None)
        chunks = [ask(*[f"c{c}q{i}" for i in range(4)]) for c in range(3)]
        with ThreadPoolExecutor(3) as executor:
            outs = list(executor.map(lambda chunk: gen.generate(chunk, PARAMS), chunks))
    assert [[a[0].text for a in out] for out in outs] == [[f"Answer to: c{c}q{i}" for i in range(4)] for c in range(3)]
    assert server.max_in_flight == 3


def test_api_key_from_environment_never_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOALIGN_TEST_KEY", "sk-secret-123")
    with FaultServer() as server:
        gen = OpenAIGenerator(endpoint(server, api_key_env="AUTOALIGN_TEST_KEY"), ResponseCache(tmp_path / "c.sqlite"))
        gen.generate(ask("a"), PARAMS)
        assert server.headers[0]["Authorization"] == "Bearer sk-secret-123"
    assert b"sk-secret-123" not in (tmp_path / "c.sqlite").read_bytes()
    monkeypatch.delenv("AUTOALIGN_TEST_KEY")
    with pytest.raises(EndpointConfigError, match="AUTOALIGN_TEST_KEY"):
        OpenAIGenerator(EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="AUTOALIGN_TEST_KEY"))


def test_wrong_key_stops_the_run_with_a_clear_error():
    with FaultServer(["401"] * 10) as server:
        gen = OpenAIGenerator(endpoint(server), None)
        with pytest.raises(EndpointConfigError, match="HTTP 401 authentication failed"):
            gen.generate(ask("a", "b"), PARAMS)


def test_logprobs_are_requested_and_kept():
    with FaultServer() as server:
        gen = OpenAIGenerator(endpoint(server), None)
        cand = gen.generate(ask("x"), SamplingParams(temperature=0, top_logprobs=2))[0][0]
        assert server.bodies[0]["logprobs"] is True and server.bodies[0]["top_logprobs"] == 2
    assert cand.logprobs == [-0.5, -0.5, -0.5] and cand.top_logprobs[0] == {"Answer": -0.5}
    assert cand.tokens == ["Answer", "to:", "x"]
