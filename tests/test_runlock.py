"""One writer per run directory: a live owner stops a second run, a dead owner's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from autoalign.runlock import LOCK_FILE, RunLock, RunLockedError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from autoalign.runlock import RunLock
    lock = RunLock(sys.argv[1], log=lambda m: None)
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def hold_in_subprocess(run_dir) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_with_the_owner_named(tmp_path):
    run_dir = tmp_path / "runs" / "x"
    owner = hold_in_subprocess(run_dir)
    try:
        with pytest.raises(RunLockedError) as err:
            RunLock(run_dir, log=lambda m: None).acquire()
        assert f"PID {owner.pid} on " in str(err.value)
        assert str(run_dir) in str(err.value)
        # The refused run changed nothing: the owner is still recorded.
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == owner.pid
    finally:
        owner.kill()
        owner.wait()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_notice(tmp_path):
    run_dir = tmp_path / "run"
    owner = hold_in_subprocess(run_dir)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    notices = []
    with RunLock(run_dir, log=notices.append):
        recorded = json.loads((run_dir / LOCK_FILE).read_text())
        assert recorded["pid"] == os.getpid()
    assert len(notices) == 1 and f"PID {owner.pid}" in notices[0] and "no longer running" in notices[0]
    # Released cleanly: the file is emptied, and the next run takes it without a notice.
    assert (run_dir / LOCK_FILE).read_text() == ""
    notices.clear()
    with RunLock(run_dir, log=notices.append):
        pass
    assert notices == []


def test_a_lock_left_on_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "elsewhere.example"}))
    with pytest.raises(RunLockedError, match=r"PID 4242 on elsewhere.example.*delete .*run.lock"):
        RunLock(tmp_path, log=lambda m: None).acquire()


def test_two_locks_in_one_process_conflict_and_release_frees(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(RunLockedError):
        RunLock(tmp_path).acquire()
    first.release()
    with RunLock(tmp_path, log=lambda m: pytest.fail(f"unexpected notice: {m}")):
        pass


def test_a_run_on_a_directory_another_run_owns_stops_before_writing(tiny_model_dir, tmp_path):
    from test_loop_tiny import tiny_config

    from autoalign.loops import iterate

    cfg = tiny_config(tiny_model_dir, tmp_path / "runs", "iterations=1")
    owner = hold_in_subprocess(cfg.run_dir)
    try:
        with pytest.raises(RunLockedError, match=f"PID {owner.pid} on "):
            iterate.run(cfg, log=lambda m: None)
        assert sorted(p.name for p in cfg.run_dir.iterdir()) == [LOCK_FILE]
    finally:
        owner.kill()
        owner.wait()
