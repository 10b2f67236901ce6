"""Kill-anywhere harness (issue 15): a run is killed with SIGKILL at seeded points of its own
stage timeline, resumed each time with the same command, and must end with the artifacts of an
uninterrupted run, no row duplicated or lost.

A child process runs the loop with hooks that only observe it: each event (a generate call, an
optimizer step, a chunk append, a rename that completes a file, a checkpoint or a model) is
counted per stage, and at the chosen one the process sends itself SIGKILL, as `kill -9` would;
a chunk append is cut part way first (a torn record). Nothing in autoalign knows about the hooks.

    parent: clean run (records the timeline) -> 10 points -> kill, resume, ... -> final resume
    child:  python tests/kill_harness.py SPEC_JSON tiny MODEL_DIR RUNS_DIR [override ...]
            python tests/kill_harness.py SPEC_JSON cli run RECIPE [override ...]

Used by tests/test_kill_anywhere.py (tiny model) and bench/kill_anywhere.py (the bundled model).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMING = ("seconds", "per_second")
CATEGORIES = {
    # (event kind, what the stage name contains) -> the timeline category the point is drawn from
    "generation": lambda e: e["kind"] == "generate" and "judg" not in e["stage"] and "h2h" not in e["stage"],
    "judging": lambda e: e["kind"] == "generate" and ("judg" in e["stage"] or "h2h" in e["stage"]),
    "pair building": lambda e: "pairs" in e["stage"] and e["kind"] in ("file write", "manifest write"),
    "DPO step": lambda e: e["kind"] == "optimizer step",
    "checkpoint write": lambda e: e["kind"] == "checkpoint write",
    "model write": lambda e: e["kind"] == "model write",
    "chunk write": lambda e: e["kind"] == "chunk write",
    "manifest write": lambda e: e["kind"] == "manifest write",
    "report": lambda e: e["kind"] == "report write",
}


def renamed_kind(dst: str | os.PathLike) -> str:
    """What a rename into place completes, by its destination."""
    name = Path(dst).name
    if name == "manifest.json":
        return "manifest write"
    if name == "report.html":
        return "report write"
    if name.startswith("train_state"):
        return "checkpoint write"
    if name == "model":
        return "model write"
    return "file write"


class Hooks:
    """Counts events per stage; kills this process at spec["kill"] = {stage, kind, k}, or as soon as
    the run is past that stage (a resumed run may have less of it left to do)."""

    def __init__(self, spec: dict):
        self.kill = spec.get("kill")
        self.order = spec.get("order", [])
        self.record = open(spec["record"], "a") if spec.get("record") else None  # noqa: SIM115 (lives as long as the process)
        self.rng = random.Random(json.dumps(self.kill, sort_keys=True))
        self.stage = "start"
        self.counts: Counter = Counter()

    def begin(self, stage: str) -> None:
        self.stage = stage
        if self.kill and self._index(stage) > self._index(self.kill["stage"]):
            self.die(f"stage {stage} begins, past {self.kill['stage']}")

    def event(self, kind: str, before_dying=None) -> None:
        stage = "report" if kind == "report write" else self.stage
        self.counts[stage, kind] += 1
        k = self.counts[stage, kind]
        if self.record:
            self.record.write(json.dumps({"stage": stage, "kind": kind, "k": k}) + "\n")
            self.record.flush()
        target = self.kill
        if target and (stage, kind) == (target["stage"], target["kind"]) and k >= target["k"]:
            if before_dying:
                before_dying(self.rng)
            self.die(f"{kind} #{k} in {stage}")

    def _index(self, stage: str) -> int:
        return self.order.index(stage) if stage in self.order else -1

    def die(self, where: str) -> None:
        print(f"KILLED at {where}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def install(hooks: Hooks, runs_root: Path) -> None:
    import torch

    from autoalign import io as io_module
    from autoalign import store
    from autoalign.generation import hf, openai

    begin = store.Stage.begin

    def begin_stage(self):
        hooks.begin(str(self.dir.relative_to(runs_root)))
        return begin(self)

    store.Stage.begin = begin_stage

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        hooks.event(renamed_kind(dst))  # the file is complete beside its destination, not yet in place
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace

    real_write_all = io_module._write_all

    def write_all(fd, data):
        hooks.event("chunk write", before_dying=lambda rng: real_write_all(fd, data[: int(len(data) * rng.random())]))
        return real_write_all(fd, data)

    io_module._write_all = write_all

    for cls in (hf.HFGenerator, openai.OpenAIGenerator):
        cls.generate = _counted(cls.generate, hooks, "generate")
    torch.optim.AdamW.step = _counted(torch.optim.AdamW.step, hooks, "optimizer step")


def _counted(method, hooks: Hooks, kind: str):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        hooks.event(kind)
        return method(*args, **kwargs)

    return wrapper


def child(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    if argv[1] == "tiny":
        sys.path.insert(0, str(HERE))
        from test_loop_tiny import make_verifier, tiny_config

        from autoalign.loops import iterate
        from autoalign.report import write_report

        model_dir, runs = Path(argv[2]), Path(argv[3])
        cfg = tiny_config(model_dir, runs, *argv[4:])
        install(Hooks(spec), runs)
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        write_report(cfg.run_dir)
    else:  # the CLI, as a user types it
        from autoalign.cli import app
        from autoalign.config import load_config

        recipe, overrides = argv[3], argv[4:]
        install(Hooks(spec), load_config(Path(recipe), overrides).run_dir.parent)
        app(argv[2:], standalone_mode=True)


# --- the parent side ---


def run_child(spec: dict, target: list[str], log_path: Path, timeout: float) -> int:
    with log_path.open("a") as log:
        done = subprocess.run(
            [sys.executable, str(HERE / "kill_harness.py"), json.dumps(spec), *target],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return done.returncode


def timeline(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def stage_order(events: list[dict]) -> list[str]:
    return list(dict.fromkeys(e["stage"] for e in events))


def choose_points(events: list[dict], n: int, seed: int) -> list[dict]:
    """n kill points: one from each category of the timeline first, then any; in timeline order."""
    rng = random.Random(seed)
    chosen: set[int] = set()
    for matches in CATEGORIES.values():
        indices = [i for i, e in enumerate(events) if matches(e) and i not in chosen]
        if indices and len(chosen) < n:
            chosen.add(rng.choice(indices))
    rest = [i for i in range(len(events)) if i not in chosen and events[i]["stage"] != "start"]
    chosen.update(rng.sample(rest, min(len(rest), n - len(chosen))))
    return [{**events[i], "at": i, "of": len(events)} for i in sorted(chosen)]


def category(event: dict) -> str:
    return next((name for name, matches in CATEGORIES.items() if matches(event)), event["kind"])


CLI_RUN_EXTRAS = ("result.json", "answer_cache", "engines")
"""What `autoalign run` leaves beside the stages that is not the run's result: its wall time
(result.json), and caches of the generation engine."""


def artifacts(root: Path, also_skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Digest of every file a run leaves, minus timings, the manifest's clock, config.yaml (it
    names the run's directory), the HTTP cache, the report (it shows the wall time) and the
    paths starting with one of also_skip."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        skip = rel in ("manifest.json", "config.yaml") or "report" in rel
        if path.is_dir() or skip or rel.startswith(("http_cache", *also_skip)):
            continue
        if path.name == "metrics.json":
            metrics = {k: v for k, v in json.loads(path.read_text()).items() if not any(t in k for t in TIMING)}
            out[rel] = repr(sorted(metrics.items()))
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def duplicated_rows(root: Path) -> list[str]:
    """Stage data files in which an id appears twice."""
    bad = []
    for path in root.rglob("data.jsonl"):
        ids = [json.loads(line).get("id") for line in path.read_text().splitlines() if line.strip()]
        ids = [i for i in ids if i is not None]
        if len(ids) != len(set(ids)):
            bad.append(str(path.relative_to(root)))
    return bad


def kill_anywhere(
    clean: list[str],
    faulty: list[str],
    clean_dir: Path,
    faulty_dir: Path,
    work: Path,
    points: int = 10,
    seed: int = 0,
    timeout: float = 3600,
    say=print,
) -> dict:
    """clean / faulty: the child's target arguments for two run directories that differ only in
    where they are. Returns what happened; raises AssertionError when the resumed run differs."""
    work.mkdir(parents=True, exist_ok=True)
    record = work / "timeline.jsonl"
    record.unlink(missing_ok=True)
    started = time.perf_counter()
    assert run_child({"record": str(record)}, clean, work / "clean.log", timeout) == 0, (
        work / "clean.log"
    ).read_text()[-3000:]
    clean_seconds = time.perf_counter() - started
    events = timeline(record)
    order = stage_order(events)
    chosen = choose_points(events, points, seed)
    say(f"timeline: {len(events)} events in {len(order)} stages; seed {seed}; uninterrupted run {clean_seconds:.0f}s")
    kills = []
    for n, point in enumerate(chosen, 1):
        target = {"stage": point["stage"], "kind": point["kind"], "k": point["k"]}
        log = work / f"kill_{n}.log"
        code = run_child({"kill": target, "order": order}, faulty, log, timeout)
        said = [line.split("KILLED at ")[-1] for line in log.read_text().splitlines() if "KILLED at " in line]
        where = said[-1] if said else "(no notice)"
        say(
            f"kill point {n}: {category(point)} = {point['kind']} #{point['k']} in {point['stage']} "
            f"(event {point['at']} of {point['of']}); killed at {where}; exit {code}"
        )
        kills.append({**target, "category": category(point), "killed_at": where, "exit": code})
        assert code == -signal.SIGKILL, (
            f"kill point {n}: the run exited {code} instead of being killed:\n{log.read_text()[-3000:]}"
        )
    code = run_child({}, faulty, work / "final.log", timeout)
    assert code == 0, (work / "final.log").read_text()[-3000:]
    expected, got = artifacts(clean_dir, CLI_RUN_EXTRAS), artifacts(faulty_dir, CLI_RUN_EXTRAS)
    differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    duplicated = duplicated_rows(faulty_dir)
    say(f"KILL_ANYWHERE points={len(kills)} files={len(expected)} differ={len(differ)} duplicated={len(duplicated)}")
    assert not differ, f"resumed run differs from the uninterrupted one in {differ[:10]}"
    assert not duplicated, f"rows duplicated in {duplicated}"
    return {"kills": kills, "files": sorted(expected), "clean_seconds": clean_seconds}


if __name__ == "__main__":
    child(sys.argv[1:])
