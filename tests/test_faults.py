"""Faults a user meets: a crash in the middle of a chunk write, an endpoint that is down or refuses
the key, a stage where every request failed, and retrying the failures of a finished stage."""

from __future__ import annotations

import random
import socket

import pytest
from fault_server import FaultServer
from kill_harness import artifacts
from test_loop_tiny import make_verifier, tiny_config
from test_teacher_loops import ENDPOINT

from autoalign import io as io_module
from autoalign.generation.openai import EndpointConfigError
from autoalign.io import read_json
from autoalign.loops import iterate
from autoalign.store import StageFailedError


class SimulatedKill(BaseException):
    """Not an Exception: nothing in the code under test may catch it, as with kill -9."""


def run_with_kill(cfg, kill_at: int | None, cut: float, monkeypatch) -> int:
    """Run; the kill_at-th chunk write (1-based) writes only `cut` of its bytes, then the process
    'dies'. Returns how many chunk writes the run made."""
    real = io_module._write_all
    calls = 0

    def write(fd, data):
        nonlocal calls
        calls += 1
        if calls == kill_at:
            real(fd, data[: int(len(data) * cut)])
            raise SimulatedKill(f"killed inside chunk write {calls}")
        real(fd, data)

    monkeypatch.setattr(io_module, "_write_all", write)
    try:
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    finally:
        monkeypatch.setattr(io_module, "_write_all", real)
    return calls


def test_kill_inside_a_chunk_write_then_resume_equals_an_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch):
    extra = ("iterations=1", "sample.sampling.batch_size=2", "judge.sampling.batch_size=2")
    clean = tiny_config(tiny_model_dir, tmp_path / "clean", *extra)
    writes = run_with_kill(clean, None, 0, monkeypatch)
    expected = artifacts(clean.run_dir)
    assert writes >= 6 and any(k.endswith("model.safetensors") for k in expected)

    rng = random.Random(16)
    # Write 2 is the student's second chunk of samples (temperature 1): the one a resume is most
    # likely to get wrong. Then two seeded random points.
    points = [2, *sorted(rng.sample(range(3, writes + 1), 2))]
    for n, kill_at in enumerate(points):
        cut = rng.uniform(0.05, 0.95)
        print(f"kill point: chunk write {kill_at} of {writes}, {cut:.0%} of its bytes written")
        cfg = tiny_config(tiny_model_dir, tmp_path / f"killed{n}", *extra)
        with pytest.raises(SimulatedKill):
            run_with_kill(cfg, kill_at, cut, monkeypatch)
        run_with_kill(cfg, None, 0, monkeypatch)  # the same command again
        assert artifacts(cfg.run_dir) == expected, f"kill at chunk write {kill_at}"


def teacher_demo(tiny_model_dir, tmp_path, base_url: str, *extra: str):
    return tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "loop=teacher_demo",
        f"teacher.endpoint.base_url={base_url}",
        *ENDPOINT,
        "teacher.endpoint.max_concurrency=1",
        "eval.enabled=false",
        *extra,
    )


def test_unreachable_endpoint_stops_before_any_work(tiny_model_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    cfg = teacher_demo(tiny_model_dir, tmp_path, f"http://user:secret@127.0.0.1:{port}/v1")
    with pytest.raises(EndpointConfigError, match="unreachable") as err:
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert "secret" not in str(err.value) and f"***@127.0.0.1:{port}" in str(err.value)
    assert not cfg.run_dir.exists()  # nothing generated, nothing written


def test_unset_or_wrong_api_key_stops_before_any_work(tiny_model_dir, tmp_path, monkeypatch):
    with FaultServer(require_key="right") as server:
        monkeypatch.delenv("AUTOALIGN_TEST_KEY", raising=False)
        cfg = teacher_demo(tiny_model_dir, tmp_path, server.base_url, "teacher.endpoint.api_key_env=AUTOALIGN_TEST_KEY")
        with pytest.raises(EndpointConfigError, match="AUTOALIGN_TEST_KEY .* is not set"):
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        monkeypatch.setenv("AUTOALIGN_TEST_KEY", "wrong")
        with pytest.raises(EndpointConfigError, match="HTTP 401"):
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert server.bodies == [] and not cfg.run_dir.exists()
        monkeypatch.setenv("AUTOALIGN_TEST_KEY", "right")
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert len(server.bodies) == 6


def test_stage_where_every_item_failed_is_not_recorded_and_is_retried(tiny_model_dir, tmp_path):
    with FaultServer(["400"] * 6) as server:
        cfg = teacher_demo(tiny_model_dir, tmp_path, server.base_url)
        with pytest.raises(StageFailedError, match=rf"all 6 items failed.*teacher @ {server.base_url}: http_400"):
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert "iter_1/teacher_answers" not in read_json(cfg.run_dir / "manifest.json")["stages"]
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)  # the server works now
        assert len(server.bodies) == 12
    answers = read_json(cfg.run_dir / "iter_1/teacher_answers/metrics.json")
    assert answers["failed"] == 0 and answers["candidates"] == 6
    assert read_json(cfg.run_dir / "iter_1/pairs/metrics.json")["pairs"] == 6


def test_retry_failed_asks_again_only_for_the_failures(tiny_model_dir, tmp_path):
    with FaultServer(["400", "400"]) as server:
        cfg = teacher_demo(tiny_model_dir, tmp_path, server.base_url)
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        manifest = read_json(cfg.run_dir / "manifest.json")["stages"]
        assert manifest["iter_1/teacher_answers"]["failed"] == 2
        assert read_json(cfg.run_dir / "iter_1/pairs/metrics.json")["pairs"] == 4
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)  # a plain re-run keeps the result
        assert len(server.bodies) == 6
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier, retry_failed=True)
        assert len(server.bodies) == 8  # only the two failures were asked again
    assert read_json(cfg.run_dir / "manifest.json")["stages"]["iter_1/teacher_answers"]["failed"] == 0
    assert read_json(cfg.run_dir / "iter_1/teacher_answers/metrics.json")["failed"] == 0
    assert read_json(cfg.run_dir / "iter_1/pairs/metrics.json")["pairs"] == 6  # and what follows was redone
