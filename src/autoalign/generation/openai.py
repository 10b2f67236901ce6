"""Generation through any OpenAI-compatible chat-completions server (vLLM, llama.cpp server,
Ollama, hosted APIs), behind the same Generator contract as the in-process backend.

- n candidates per request are n requests, each with its own seed request_seed(seed, messages, i)
  (not the `n` field, which several servers ignore), sent concurrently up to `max_concurrency`;
- timeouts, connection errors, malformed replies, 429 and 5xx are retried with exponential
  backoff and jitter, a 429's Retry-After honoured; 401/403/404 mean the configuration is wrong
  and stop the run with a message saying so; other 4xx fail only that item;
- an item that still has no answer is returned as a failed Candidate (finish_reason "error",
  with the reason), never dropped;
- answers are cached by a hash of the request (ResponseCache), so a resumed run never pays twice,
  and every HTTP request counts against an optional budget kept in the same cache;
- requests, retries, cache hits, failures and tokens are counted in `usage`.

The API key is read from the environment variable the config names, at construction, and lives
only in the client's headers.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter
from tqdm.auto import tqdm

from autoalign.chat import defuse
from autoalign.config import EndpointConfig
from autoalign.generation.base import SamplingParams, Usage, request_seed
from autoalign.generation.http_cache import ResponseCache, request_key
from autoalign.types import Candidate, Message

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401: "authentication failed", 403: "access denied", 404: "model or endpoint not found"}


class TransientError(Exception):
    """Worth another try: timeout, connection trouble, 429/5xx, a reply that is not valid JSON."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ItemError(Exception):
    """This request cannot succeed (a 4xx other than auth/not-found, budget spent)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class EndpointConfigError(RuntimeError):
    """The server refuses every request (bad key, unknown model or URL): stop the run."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def candidate_from_response(data: dict[str, Any]) -> Candidate:
    """Raises KeyError/TypeError/IndexError on a reply that lacks the chat-completions shape."""
    choice = data["choices"][0]
    text = choice["message"]["content"] or ""
    logprob_rows = (choice.get("logprobs") or {}).get("content") or []
    logprobs = [row["logprob"] for row in logprob_rows] or None
    tokens = [row["token"] for row in logprob_rows]
    top = [{alt["token"]: alt["logprob"] for alt in row.get("top_logprobs") or []} for row in logprob_rows]
    usage = data.get("usage") or {}
    return Candidate(
        text=text,
        num_tokens=int(usage.get("completion_tokens") or len(logprob_rows)),
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        logprobs=logprobs,
        tokens=tokens if any(top) else None,
        top_logprobs=top if any(top) else None,
    )


def without_prefix(candidate: Candidate, prefix: str) -> Candidate:
    """The reply after a started answer: some servers (llama.cpp's) echo the started part."""
    if prefix and candidate.text.startswith(prefix):
        return dataclasses.replace(candidate, text=candidate.text[len(prefix) :])
    return candidate


class OpenAIGenerator:
    def __init__(
        self, cfg: EndpointConfig, cache: ResponseCache | None = None, transport: httpx.BaseTransport | None = None
    ):
        self.cfg = cfg
        self.cache = cache
        self.usage = Usage()
        headers = {}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise EndpointConfigError(
                    f"endpoint {cfg.display_url}: environment variable {cfg.api_key_env} (endpoint.api_key_env) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            base_url=cfg.base_url, timeout=cfg.timeout_seconds, headers=headers, transport=transport
        )
        self._sent_lock = threading.Lock()
        self._sent = 0  # budget count when there is no cache to keep it
        # At most max_concurrency requests at once, however many generate() calls run side by side.
        self._slots = threading.BoundedSemaphore(cfg.max_concurrency)
        self._backoff = wait_exponential_jitter(
            initial=cfg.backoff_seconds, max=cfg.backoff_max_seconds, jitter=cfg.backoff_seconds
        )

    def check(self, timeout: float = 10.0) -> list[str]:
        """Before any generation: the server answers and accepts the key (GET /models). Raises
        EndpointConfigError naming the endpoint otherwise; returns the model ids it lists (a
        server without /models passes with [])."""
        try:
            response = self.client.get("/models", timeout=min(timeout, self.cfg.timeout_seconds))
        except httpx.TimeoutException:
            raise EndpointConfigError(
                f"endpoint {self.label}: no reply to GET /models within {timeout:.0f}s; is the server up?"
            ) from None
        except httpx.TransportError as e:
            raise EndpointConfigError(
                f"endpoint {self.label}: unreachable ({type(e).__name__}: {e}); is the server up?"
            ) from None
        if response.status_code in (401, 403):
            hint = f"; is ${self.cfg.api_key_env} right?" if self.cfg.api_key_env else "; set endpoint.api_key_env"
            raise EndpointConfigError(
                f"endpoint {self.label}: HTTP {response.status_code} {FATAL_STATUS[response.status_code]}{hint}"
            )
        try:
            return [m["id"] for m in response.json()["data"]] if response.status_code == 200 else []
        except (ValueError, KeyError, TypeError):
            return []

    @property
    def label(self) -> str:
        return f"{self.cfg.model} @ {self.cfg.display_url}"

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        results: list[list[Candidate | None]] = [[None] * params.n for _ in requests]
        jobs = [(i, j) for i in range(len(requests)) for j in range(params.n)]
        executor = ThreadPoolExecutor(max_workers=self.cfg.max_concurrency)
        try:
            futures = {executor.submit(self._answer, requests[i], params, j): (i, j) for i, j in jobs}
            with tqdm(total=len(jobs), desc=f"requests to {self.cfg.model}", unit="req", leave=False) as bar:
                for future in as_completed(futures):
                    i, j = futures[future]
                    results[i][j] = without_prefix(future.result(), params.assistant_prefix)
                    bar.update()
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def body(self, messages: list[Message], params: SamplingParams, sample_index: int) -> dict[str, Any]:
        sent = [{**m, "content": defuse(m["content"])} for m in messages]  # text, never a template's turn
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": sent,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": request_seed(params.seed, messages, sample_index),
        }
        if params.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = params.top_logprobs
        if params.assistant_prefix:
            # A final assistant message the reply continues: llama.cpp's server treats it so;
            # vLLM needs its two chat-template switches (hosted APIs may refuse the request).
            body["messages"] = [*sent, {"role": "assistant", "content": params.assistant_prefix}]
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return body

    def _answer(self, messages: list[Message], params: SamplingParams, sample_index: int) -> Candidate:
        body = self.body(messages, params, sample_index)
        key = request_key(self.cfg.base_url + "/chat/completions", body)
        if self.cache is not None and (cached := self.cache.get(key)) is not None:
            self.usage.add(cache_hits=1, answered=1)
            return candidate_from_response(cached)
        try:
            with self._slots:
                data, candidate = self._post_with_retries(body)
        except (TransientError, ItemError) as e:
            self.usage.add(failed=1)
            return Candidate.failed(f"{self.label}: {e.kind}: {e}")
        if self.cache is not None:
            self.cache.put(key, data)
        usage = data.get("usage") or {}
        self.usage.add(
            answered=1,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        return candidate

    def _post_with_retries(self, body: dict[str, Any]) -> tuple[dict[str, Any], Candidate]:
        retrying = Retrying(
            stop=stop_after_attempt(self.cfg.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            before_sleep=lambda state: self.usage.add(retries=1),
            reraise=True,
        )
        return retrying(self._post_once, body)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.cfg.backoff_max_seconds)
        return self._backoff(state)

    def _post_once(self, body: dict[str, Any]) -> tuple[dict[str, Any], Candidate]:
        """(the reply, as cached; the Candidate parsed from it)."""
        if not self._take_request():
            raise ItemError("budget", f"request budget exhausted (endpoint.max_requests={self.cfg.max_requests})")
        self.usage.add(requests=1)
        try:
            response = self.client.post("/chat/completions", json=body)
        except httpx.TimeoutException as e:
            self.usage.error("timeout")
            raise TransientError("timeout", f"no reply within {self.cfg.timeout_seconds}s") from e
        except httpx.TransportError as e:
            self.usage.error("connection")
            raise TransientError("connection", f"{type(e).__name__}: {e}") from e
        status = response.status_code
        if status in FATAL_STATUS:
            hint = f"; is ${self.cfg.api_key_env} right?" if status in (401, 403) and self.cfg.api_key_env else ""
            raise EndpointConfigError(
                f"{self.label}: HTTP {status} {FATAL_STATUS[status]}{hint} ({response.text[:200]})"
            )
        if status in RETRYABLE_STATUS:
            self.usage.error(f"http_{status}")
            raise TransientError(
                f"http_{status}", response.text[:200], retry_after_seconds(response.headers.get("retry-after"))
            )
        if status >= 400:
            self.usage.error(f"http_{status}")
            raise ItemError(f"http_{status}", response.text[:200])
        try:
            data = response.json()
            return data, candidate_from_response(data)  # parsed before anything is cached
        except (ValueError, KeyError, IndexError, TypeError) as e:
            self.usage.error("malformed")
            raise TransientError("malformed", f"reply is not a chat completion: {response.text[:120]!r}") from e

    def _take_request(self) -> bool:
        if self.cache is not None:
            return self.cache.take_request(self.cfg.max_requests)
        with self._sent_lock:
            if self.cfg.max_requests is not None and self._sent >= self.cfg.max_requests:
                return False
            self._sent += 1
            return True

    def close(self) -> None:
        self.client.close()


def check_endpoint(cfg: EndpointConfig) -> list[str]:
    """OpenAIGenerator.check without a response cache (so nothing is written yet)."""
    generator = OpenAIGenerator(cfg)
    try:
        return generator.check()
    finally:
        generator.close()
