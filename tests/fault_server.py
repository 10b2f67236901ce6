"""A small OpenAI-compatible chat-completions server for tests that misbehaves on a schedule.

Each request takes the next entry of `schedule` (then "ok" forever):
  "ok"         a valid chat completion: "Answer to: <last user message>" (+ usage, logprobs)
  "429"        HTTP 429 with Retry-After: <retry_after>
  "500"/"503"  server error
  "timeout"    sleeps `slow_seconds` before answering (longer than the client's timeout)
  "malformed"  HTTP 200 with a body that is not JSON
  "400"/"401"  client errors
GET /models lists `models` (401 when `require_key` is set and the request has no
`Authorization: Bearer <require_key>` header; the same check applies to every POST).
It records every request body and the highest number of requests in flight at once.
Listens on 127.0.0.1 only; use as a context manager.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultServer:
    def __init__(
        self,
        schedule: list[str] | None = None,
        retry_after: float = 0.0,
        slow_seconds: float = 2.0,
        delay: float = 0.0,
        models: tuple[str, ...] = ("teacher",),
        require_key: str | None = None,
    ):
        self.schedule = list(schedule or [])
        self.models = models
        self.require_key = require_key
        self.gets = 0
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.delay = delay
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict, headers: dict) -> str:
        with self._lock:
            self.bodies.append(body)
            self.headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.schedule.pop(0) if self.schedule else "ok"

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @staticmethod
    def completion(body: dict) -> dict:
        text = "Answer to: " + body["messages"][-1]["content"]
        tokens = text.split()
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                    "logprobs": {
                        "content": [
                            {"token": t, "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": -0.5}]}
                            for t in tokens
                        ]
                    },
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(tokens), "total_tokens": 10 + len(tokens)},
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the "timeout" fault)

            def _authorized(self) -> bool:
                if server.require_key and self.headers.get("Authorization") != f"Bearer {server.require_key}":
                    self._send(401, b'{"error": "invalid api key"}')
                    return False
                return True

            def do_GET(self):
                server.gets += 1
                if not self._authorized():
                    return
                if self.path.endswith("/models"):
                    self._send(
                        200,
                        json.dumps(
                            {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]}
                        ).encode(),
                    )
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self._authorized():
                    return
                action = server._next(body, dict(self.headers))
                time.sleep(server.delay + (server.slow_seconds if action == "timeout" else 0))
                if action in ("ok", "timeout"):
                    reply = (200, json.dumps(server.completion(body)).encode(), None)
                elif action == "malformed":
                    reply = (200, b'{"choices": [{"message": ', None)
                elif action == "429":
                    reply = (429, b'{"error": "rate limited"}', {"Retry-After": str(server.retry_after)})
                else:
                    reply = (int(action), json.dumps({"error": f"injected {action}"}).encode(), None)
                server._done()  # before replying: the client may send its next request at once
                self._send(*reply)

        return Handler
