"""The loop waiting for people (review.wait_for: quota): it serves the review app from a thread on
127.0.0.1 and polls the queue until enough of this iteration's items are answered, or a time
limit passes. The token is $AUTOALIGN_REVIEW_TOKEN when set (a scripted reviewer knows it),
else a random one printed with the URL."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from autoalign.review.app import make_app
from autoalign.review.queue import ReviewQueue

TOKEN_ENV = "AUTOALIGN_REVIEW_TOKEN"


@contextmanager
def review_server(queue: ReviewQueue, port: int = 0, who: str = "reviewer") -> Iterator[str]:
    """The review app served in a background thread while the block runs; yields its URL (token
    included). Stopped, and its port freed, when the block ends."""
    import uvicorn

    from autoalign.engines.server import free_port

    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    port = port or free_port()
    config = uvicorn.Config(make_app(queue, token, who), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="autoalign-review", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the review app could not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/?token={token}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def answered_items(queue: ReviewQueue, item_ids: set[str]) -> int:
    """How many of these items someone has answered (a skip counts: the person has seen it)."""
    return len({label.item_id for label in queue.labels()} & item_ids)


def wait_for_answers(
    queue: ReviewQueue,
    item_ids: set[str],
    quota: int,
    *,
    serve: bool,
    port: int = 0,
    timeout_minutes: float | None = None,
    log: Callable[[str], None] = print,
    poll_seconds: float = 0.5,
) -> int:
    """Block until min(quota, len(item_ids)) of the items are answered (quota 0: all of them) or
    the time limit passes; returns how many are answered."""
    needed = min(quota or len(item_ids), len(item_ids))
    if answered_items(queue, item_ids) >= needed:
        return answered_items(queue, item_ids)
    deadline = None if timeout_minutes is None else time.monotonic() + 60 * timeout_minutes
    with review_server(queue, port) if serve else _no_server(queue) as url:
        log(f"waiting for {needed} of {len(item_ids)} queued items to be answered: open {url}")
        while (done := answered_items(queue, item_ids)) < needed:
            if deadline is not None and time.monotonic() > deadline:
                log(f"review: {done} of {needed} answers after {timeout_minutes} min; going on without the rest")
                return done
            time.sleep(poll_seconds)
    log(f"review: {done} answers in; going on")
    return done


@contextmanager
def _no_server(queue: ReviewQueue) -> Iterator[str]:
    yield f"the app with `autoalign review {queue.path.parent}`"
