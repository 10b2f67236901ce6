"""Everything a run's report shows, read from the run store (metrics and data files only; no
model is loaded). A run is one or more lines of models: the run itself, or, for a recipe with
`branches`, one line per feedback source sharing M1, prompts and samples with the run root."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from autoalign.eval.monitors import sample_monitors
from autoalign.io import read_json, read_jsonl
from autoalign.summary import (
    head_to_head_line,
    ifeval_line,
    ifeval_metrics,
    iteration_rows,
    reward_modeling_line,
    reward_modeling_metrics,
)
from autoalign.types import Candidate, Pair

EXAMPLE_PAIRS = 4


@dataclass(frozen=True)
class Line:
    name: str
    dir: Path
    shared: Path | None
    """The run root, for a branch (its SFT, prompts and student samples live there)."""

    def metrics(self, rel: str) -> dict | None:
        for d in (self.dir, self.shared):
            if d is not None and (d / rel / "metrics.json").exists():
                return read_json(d / rel / "metrics.json")
        return None

    def rows(self, rel: str) -> list[dict]:
        for d in (self.dir, self.shared):
            if d is not None and (d / rel / "data.jsonl").exists():
                return read_jsonl(d / rel / "data.jsonl")
        return []


@dataclass
class LineReport:
    name: str
    iterations: list[int]
    table: list[tuple[str, str, str]] = field(default_factory=list)
    """(iteration, measure, value), as in the end-of-run summary."""
    monitors: list[dict] = field(default_factory=list)
    training: dict[str, list[dict]] = field(default_factory=dict)
    """"SFT" or "DPO iter t" -> per-step metrics."""
    histograms: dict[str, dict[str, int]] = field(default_factory=dict)
    head_to_head: list[dict] = field(default_factory=list)
    ifeval: dict[str, dict] = field(default_factory=dict)
    """model label -> IFEval metrics."""
    eval_lengths: dict[str, float] = field(default_factory=dict)
    """model label -> mean characters of its held-out answers."""
    pairs: list[dict] = field(default_factory=list)


def discover_lines(run_dir: Path) -> list[Line]:
    branches_file = run_dir / "branches.json"
    if branches_file.exists():
        return [
            Line(name, run_dir / name, run_dir)
            for name in read_json(branches_file)["branches"]
            if (run_dir / name).is_dir()
        ]
    return [Line(run_dir.name, run_dir, None)]


def _iterations(line: Line) -> list[int]:
    found = {
        int(m.group(1))
        for d in (line.dir, line.shared)
        if d
        for p in d.glob("iter_*")
        if (m := re.fullmatch(r"iter_(\d+)", p.name))
    }
    return sorted(t for t in found if t > 0)


def _candidates(rows: list[dict]) -> dict[str, list[Candidate]]:
    return {r["id"]: [Candidate.from_dict(c) for c in r["candidates"]] for r in rows}


def _clip(text: str, limit: int = 700) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def _standalone_evaluations(d: Path, report: LineReport) -> None:
    """`autoalign eval` results (iteration 0 of an evaluation store)."""
    for path in sorted(d.glob("h2h_*/metrics.json")):
        h = read_json(path)
        report.head_to_head.append({"iteration": 0, **h})
        report.table.append(
            ("eval", f"head to head {h['model']} vs {h['baseline']} (judge {h['judge']})", head_to_head_line(h))
        )
    for m in ifeval_metrics(d):
        report.ifeval.setdefault(m["model"], m)
        report.table.append(("eval", f"IFEval {m['model']} ({m['prompts']} prompts)", ifeval_line(m)))
    for m in reward_modeling_metrics(d):
        report.table.append(("eval", f"{m['judge']} as a judge ({m['responses']} responses)", reward_modeling_line(m)))


def collect_line(line: Line) -> LineReport:
    report = LineReport(line.name, _iterations(line))
    if sft := line.rows("iter_0/sft"):
        report.training["SFT"] = sft
    _standalone_evaluations(line.dir / "iter_0", report)
    for t in report.iterations:
        for i, (measure, value) in enumerate(iteration_rows(line.dir, t, line.shared)):
            report.table.append((str(t) if i == 0 else "", measure, value))
        if rows := line.rows(f"iter_{t}/candidates"):
            report.monitors.append({"iteration": t, "what": "student samples", **sample_monitors(_candidates(rows))})
        for name in ("judgments", "teacher_judgments"):
            if m := line.metrics(f"iter_{t}/{name}"):
                who = "self-judge" if name == "judgments" else "teacher"
                report.histograms[f"iter {t} {who}"] = m["score_histogram"]
        if dpo := line.rows(f"iter_{t}/dpo"):
            report.training[f"DPO iter {t}"] = dpo
        if h := line.metrics(f"iter_{t}/eval_h2h"):
            report.head_to_head.append({"iteration": t, **h})
        for d in [d / f"iter_{t}" for d in (line.dir, line.shared) if d]:
            for path in sorted(d.glob("eval_answers_*/data.jsonl")):
                label = path.parent.name.removeprefix("eval_answers_")
                if label not in report.eval_lengths:  # each model's answers are made once
                    answers = _candidates(read_jsonl(path))
                    report.eval_lengths[label] = sum(len(c[0].text) for c in answers.values()) / max(1, len(answers))
                    report.monitors.append(
                        {"iteration": t, "what": f"{label} held-out answers", **sample_monitors(answers)}
                    )
            for m in ifeval_metrics(d):
                report.ifeval.setdefault(m["model"], m)
        for row in line.rows(f"iter_{t}/pairs")[:EXAMPLE_PAIRS]:
            pair = Pair.from_dict(row)
            report.pairs.append(
                {
                    "iteration": t,
                    "source": pair.source,
                    "prompt": _clip(pair.prompt[-1]["content"], 400),
                    "chosen": _clip(pair.chosen),
                    "rejected": _clip(pair.rejected),
                    "chosen_score": pair.chosen_score,
                    "rejected_score": pair.rejected_score,
                }
            )
    return report
