"""`autoalign report RUN_DIR`: one self-contained HTML page per run (plots embedded as PNG),
written to RUN_DIR/report.html at the end of every run and on demand."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from autoalign.config.evaluation import INFERENCE_TABLE
from autoalign.io import atomic_write_text, read_json
from autoalign.report.collect import collect_line, discover_lines
from autoalign.report.plots import FIGURES
from autoalign.summary import (
    COMPARISON_COLUMNS,
    INFERENCE_COLUMNS,
    _fmt,
    _pct,
    comparison_rows,
    inference_rows,
    verdict,
)


def render_report(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").exists() and not (run_dir / "branches.json").exists():
        raise FileNotFoundError(f"{run_dir} is not an autoalign run directory (no manifest.json)")
    lines = []
    branches = read_json(run_dir / "branches.json")["branches"] if (run_dir / "branches.json").exists() else []
    for line in discover_lines(run_dir):
        report = collect_line(line)
        figures = [(title, png) for title, make in FIGURES.items() if (png := make(report))]
        heading = f"Branch {line.name}" if line.shared else f"Run {line.name}"
        lines.append(
            {"heading": heading, "report": report, "figures": figures, "verdict": verdict(line.dir, line.shared)}
        )
    comparison = None
    if branches:
        rows = comparison_rows(run_dir, branches)
        comparison = {
            "heading": "Paradigm comparison",
            "columns": COMPARISON_COLUMNS,
            "rows": [[_fmt(r.get(k), 2) for k, _ in COMPARISON_COLUMNS] for r in rows],
        }
    elif (run_dir / INFERENCE_TABLE).exists():
        baseline, rows = inference_rows(run_dir)
        comparison = {
            "heading": f"Inference-time methods (against {baseline})",
            "columns": INFERENCE_COLUMNS,
            "rows": [[_fmt(r.get(k), 1) for k, _ in INFERENCE_COLUMNS] for r in rows],
        }
    result = read_json(run_dir / "result.json") if (run_dir / "result.json").exists() else {}
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").exists() else "(no config.yaml)"
    env = Environment(loader=PackageLoader("autoalign", "report"), autoescape=select_autoescape(["html"]))
    return env.get_template("report.html").render(
        title=run_dir.name,
        run_dir=str(run_dir.resolve()),
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        wall_seconds=result.get("wall_seconds"),
        comparison=comparison,
        lines=lines,
        config=config,
        fmt=_fmt,
        pct=_pct,
    )


def write_report(run_dir: Path) -> Path:
    out = Path(run_dir) / "report.html"
    atomic_write_text(out, render_report(run_dir))
    return out
