"""Everything a run's report shows, read from the run store (metrics and data files only; no
model is loaded). A run is one or more lines of models: the run itself, or, for a recipe with
`branches`, one line per feedback source sharing M1, prompts and samples with the run root."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from autoalign.eval.monitors import sample_monitors
from autoalign.io import read_json
from autoalign.store import StageRecord, recorded_stages
from autoalign.summary import (
    head_to_head_line,
    ifeval_line,
    iteration_rows,
    judge_role,
    reward_modeling_line,
    stages_of,
)
from autoalign.types import Candidate, Pair

EXAMPLE_PAIRS = 4


@dataclass(frozen=True)
class Line:
    name: str
    dir: Path
    shared: Path | None
    """The run root, for a branch (its SFT, prompts and student samples live there)."""

    def stages(self, kind: str, t: int) -> list[StageRecord]:
        """This line's finished stages of a kind in iteration t, its own before the shared ones."""
        return stages_of(kind, t, self.dir, self.shared)

    def rows(self, kind: str, t: int) -> list[dict]:
        found = self.stages(kind, t)
        return found[0].rows() if found else []


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
    calibration: dict[int, dict] = field(default_factory=dict)
    """iteration -> the routed critic's calibration metrics (coverage/error curve included)."""


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
    found = {r.iteration for d in (line.dir, line.shared) if d for r in recorded_stages(d)}
    return sorted(t for t in found if t > 0)


def _candidates(rows: list[dict]) -> dict[str, list[Candidate]]:
    return {r["id"]: [Candidate.from_dict(c) for c in r["candidates"]] for r in rows}


CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clip(text: str, limit: int = 700) -> str:
    """Model text as the report shows it: cut at limit, control characters spelled out (\\x1b)
    so they neither vanish nor act; HTML escaping is the template's (autoescape)."""
    text = text if len(text) <= limit else text[:limit] + " [...]"
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _standalone_evaluations(line: Line, report: LineReport) -> None:
    """`autoalign eval` results (iteration 0 of an evaluation store)."""
    for record in stages_of("head_to_head", 0, line.dir):
        h = record.metrics()
        report.head_to_head.append({"iteration": 0, **h})
        report.table.append(
            ("eval", f"head to head {h['model']} vs {h['baseline']} (judge {h['judge']})", head_to_head_line(h))
        )
    for record in stages_of("ifeval", 0, line.dir):
        m = record.metrics()
        report.ifeval.setdefault(m["model"], m)
        report.table.append(("eval", f"IFEval {m['model']} ({m['prompts']} prompts)", ifeval_line(m)))
    for record in stages_of("reward_modeling", 0, line.dir):
        m = record.metrics()
        report.table.append(("eval", f"{m['judge']} as a judge ({m['responses']} responses)", reward_modeling_line(m)))


def collect_line(line: Line) -> LineReport:
    report = LineReport(line.name, _iterations(line))
    if sft := line.rows("sft", 0):
        report.training["SFT"] = sft
    _standalone_evaluations(line, report)
    for t in report.iterations:
        for i, (measure, value) in enumerate(iteration_rows(line.dir, t, line.shared)):
            report.table.append((str(t) if i == 0 else "", measure, value))
        for record in line.stages("samples", t):
            model = record.metrics()["model"]
            report.monitors.append(
                {"iteration": t, "what": f"{model} samples", **sample_monitors(_candidates(record.rows()))}
            )
        for record in stages_of("judgments", t, line.dir):
            m = record.metrics()
            report.histograms[f"iter {t} {judge_role(m)}"] = m["score_histogram"]
        for record in stages_of("critic_calibration", t, line.dir):
            report.calibration[t] = record.metrics()
        if dpo := line.rows("dpo", t):
            report.training[f"DPO iter {t}"] = dpo
        if rl := line.rows("rl", t):
            report.training[f"RL iter {t}"] = rl
        for record in stages_of("head_to_head", t, line.dir):
            report.head_to_head.append({"iteration": t, **record.metrics()})
        for record in line.stages("answers", t):
            label = record.metrics()["model"]
            if label not in report.eval_lengths:  # each model's answers are made once
                answers = _candidates(record.rows())
                report.eval_lengths[label] = sum(len(c[0].text) for c in answers.values()) / max(1, len(answers))
                report.monitors.append(
                    {"iteration": t, "what": f"{label} held-out answers", **sample_monitors(answers)}
                )
        for record in line.stages("ifeval", t):
            m = record.metrics()
            report.ifeval.setdefault(m["model"], m)
        for record in line.stages("ifeval_final", t):  # the last model and M1 on the final set
            m = record.metrics()
            report.ifeval.setdefault(f"{m['model']} ({m['prompts']} prompts)", m)
        for row in line.rows("pairs", t)[:EXAMPLE_PAIRS]:
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
