"""Prompt creation on a server: the next batch generates while this one is read, and no more
batches are started than the tasks still needed call for (stages/prompts._ahead)."""

from __future__ import annotations

import threading

from autoalign.stages.prompts import _ahead


class CountingServer:
    """Answers each request with its own text; records calls; the first call waits until a
    second one has started, so it only finishes if calls overlap."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.second_started = threading.Event()
        self.lock = threading.Lock()

    def generate(self, requests, params):
        with self.lock:
            self.calls.append(requests)
            first = len(self.calls) == 1
            if not first:
                self.second_started.set()
        if first:
            assert self.second_started.wait(timeout=10)
        return [[f"answer to {r}"] for r in requests]


def batches(n_batches: int, size: int):
    for b in range(n_batches):
        yield [f"b{b}r{i}" for i in range(size)], {"seed": b}


def test_batches_overlap_and_come_back_in_order():
    server = CountingServer()
    got = list(_ahead(server, batches(5, 3), in_flight=2, still_needed=lambda: 1000))
    assert [requests for requests, _ in got] == [[f"b{b}r{i}" for i in range(3)] for b in range(5)]
    assert all(outputs == [[f"answer to {r}"] for r in requests] for requests, outputs in got)
    assert len(server.calls) == 5


def test_no_batch_is_started_beyond_what_the_tasks_still_needed_call_for():
    """Each request yields one task; 10 are needed, batches of 4: the third batch covers them, so
    a fourth is never generated (in sequence the caller would also stop after the third)."""
    server = CountingServer()
    kept = []
    for requests, _ in _ahead(server, batches(10, 4), in_flight=2, still_needed=lambda: 10 - len(kept)):
        kept.extend(requests)
        if len(kept) >= 10:
            break
    assert len(kept) == 12 and len(server.calls) == 3


def test_in_process_generators_are_called_one_batch_at_a_time():
    calls = []

    class InProcess:
        def generate(self, requests, params):
            calls.append(threading.current_thread() is threading.main_thread())
            return [[r] for r in requests]

    got = list(_ahead(InProcess(), batches(3, 2), in_flight=1, still_needed=lambda: 1000))
    assert len(got) == 3 and calls == [True, True, True]
