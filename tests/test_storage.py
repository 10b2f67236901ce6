"""Disk full and other refused writes (issue 15): every write goes through the atomic path; a
refused one ends the run with a StorageError naming the path and the free space, leaves the
previous state valid, and the same command after space is freed finishes identically.

The end-to-end case fills a real, small tmpfs (root only: skipped where mounting is refused);
the unit cases inject the errno into each writer."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
import torch
from kill_harness import artifacts
from test_loop_tiny import make_verifier, tiny_config

from autoalign import io as io_module
from autoalign.io import StorageError, append_record, atomic_write_text, read_records, write_json
from autoalign.loops import iterate


def refusing(err: int):
    """A stand-in for a write call that fails the way the kernel does when the disk refuses."""

    def write(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    return write


def test_a_refused_atomic_write_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "stage" / "metrics.json"
    write_json(target, {"done": 1})
    monkeypatch.setattr(io_module.os, "replace", refusing(errno.ENOSPC))
    with pytest.raises(StorageError, match=rf"cannot write {target}: No space left on device \(.* free on "):
        write_json(target, {"done": 2})
    assert target.read_text() == '{\n  "done": 1\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]  # no temporary file left


def test_a_read_only_filesystem_is_a_storage_error_too(tmp_path, monkeypatch):
    monkeypatch.setattr(io_module.os, "open", refusing(errno.EROFS))
    with pytest.raises(StorageError, match=r"Read-only file system"):
        atomic_write_text(tmp_path / "a.txt", "x")


def test_a_refused_append_leaves_no_torn_record(tmp_path, monkeypatch):
    path = tmp_path / "partial.jsonl"
    append_record(path, {"ids": ["a"], "rows": [{"id": "a"}]})
    real = io_module._write_all

    def half_then_full(fd, data):  # the kernel took part of the line, then the disk filled
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_module, "_write_all", half_then_full)
    with pytest.raises(StorageError, match=r"partial.jsonl: No space left on device"):
        append_record(path, {"ids": ["b"], "rows": [{"id": "b"}]})
    monkeypatch.setattr(io_module, "_write_all", real)
    assert path.read_bytes().endswith(b"\n") and [r["ids"] for r in read_records(path)] == [["a"]]


def test_a_refused_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    from autoalign.train import resume

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    checkpoints = resume.TrainCheckpointer(tmp_path / "train_state", every_minutes=1)
    checkpoints.save(model, optimizer, scheduler, step=3, history=[{"loss": 1.0}])
    monkeypatch.setattr(resume.torch, "save", lambda obj, f: refusing(errno.ENOSPC)())
    with pytest.raises(StorageError, match=r"cannot write .*train_state: No space left on device"):
        checkpoints.save(model, optimizer, scheduler, step=4, history=[{"loss": 1.0}, {"loss": 0.5}])
    assert checkpoints.load(model, optimizer, scheduler) == (3, [{"loss": 1.0}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_state"]


def test_a_library_error_that_carries_the_os_message_is_recognised(tmp_path):
    """safetensors raises its own error type from Rust; the OS message inside it is what counts."""
    from safetensors import SafetensorError

    seen = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors 0.7, tmpfs full
    refused = pytest.raises(StorageError, match=r"model: Error while serializing: I/O error: No space left on device")
    with refused, io_module.storage_errors(tmp_path / "model"):
        raise SafetensorError(seen)
    with pytest.raises(ValueError, match="unrelated"), io_module.storage_errors(tmp_path / "model"):
        raise ValueError("unrelated")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real tmpfs that can be filled and then grown: (mount point, resize(bytes))."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def resize(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    try:
        yield mount, resize
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_mid_run_then_freed_space_resumes_identically(tiny_model_dir, tmp_path, small_tmpfs):
    extra = ("iterations=1", "sample.sampling.batch_size=2", "judge.sampling.batch_size=2")
    clean = tiny_config(tiny_model_dir, tmp_path / "clean", *extra)
    iterate.run(clean, log=lambda m: None, make_judge=make_verifier)
    expected = artifacts(clean.run_dir)
    needed = sum(p.stat().st_size for p in clean.run_dir.rglob("*") if p.is_file())

    mount, resize = small_tmpfs
    resize(needed // 2)  # the disk fills part way through the run (during or after DPO's checkpoint)
    cfg = tiny_config(tiny_model_dir, mount, *extra)
    with pytest.raises(
        StorageError, match=rf"cannot write {mount}/tiny/.*No space left on device.* \(\d+ bytes free on {mount}"
    ):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    manifest = io_module.read_json(cfg.run_dir / "manifest.json")
    assert manifest["stages"], "stages finished before the disk filled are recorded"
    assert not list(cfg.run_dir.rglob(".*.tmp")), "no temporary file is left behind"

    resize(needed * 4)  # space freed: the same command resumes and finishes
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert artifacts(cfg.run_dir) == expected
