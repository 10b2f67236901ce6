"""The end-of-run summary table, built from the store's metrics files (so a fully cached
re-run prints the same table)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from autoalign.io import read_json


def _metrics(run_dir: Path, rel: str) -> dict | None:
    path = run_dir / rel / "metrics.json"
    return read_json(path) if path.exists() else None


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def iteration_rows(run_dir: Path, t: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if p := _metrics(run_dir, f"iter_{t}/prompts"):
        rows.append(("prompts created / kept", f"{p['tasks_parsed']} / {p['kept']}  (requests {p['requests']})"))
        rows.append(("prompts dropped", ", ".join(f"{k} {v}" for k, v in sorted(p["dropped"].items())) or "none"))
    if c := _metrics(run_dir, f"iter_{t}/candidates"):
        rows.append(("candidates", f"{c['candidates']}  (mean {c['mean_tokens']:.0f} tokens, {c['truncated']} hit max tokens)"))
    if j := _metrics(run_dir, f"iter_{t}/judgments"):
        rows.append(("judge parse rate", f"{j['parse_rate']:.1%}  ({j['parsed']}/{j['judged']})"))
        rows.append(("score distribution 0..5", "  ".join(f"{k}:{v}" for k, v in j["score_histogram"].items())))
        rows.append(("mean judge score", _fmt(j["mean_score"], 2)))
    if pr := _metrics(run_dir, f"iter_{t}/pairs"):
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(pr["dropped"].items())) or "none"
        rows.append(("pairs kept", f"{pr['pairs']} of {pr['prompts']} prompts  (dropped: {dropped})"))
    if d := _metrics(run_dir, f"iter_{t}/dpo"):
        rows.append(("DPO final loss / acc / margin", f"{_fmt(d['final_loss'])} / {_fmt(d['final_accuracy'], 2)} / {_fmt(d['final_margin'])}"))
        rows.append(("DPO throughput", f"{d['pairs_per_second']:.2f} pairs/s  ({d['steps']} steps, {d['seconds']:.0f}s)"))
    if e := _metrics(run_dir, f"iter_{t}/eval"):
        rows.append((
            f"eval {e['new']} vs {e['old']} (judge {e['judge']})",
            f"W/T/L {e['wins']}/{e['ties']}/{e['losses']}, win rate {_fmt(e['win_rate'], 2)}, "
            f"mean score {_fmt(e['new_mean_score'], 2)} vs {_fmt(e['old_mean_score'], 2)}, unscored {e['unscored']}",
        ))
    return rows


def print_summary(run_dir: Path, iterations: int, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"autoalign run: {run_dir}", show_lines=False)
    table.add_column("iteration")
    table.add_column("measure")
    table.add_column("value")
    if s := _metrics(run_dir, "iter_0/sft"):
        table.add_row("0", "SFT final loss", f"{_fmt(s['final_loss'])}  ({s['examples']} examples, {s['steps']} steps)")
    for t in range(1, iterations + 1):
        for i, (name, value) in enumerate(iteration_rows(run_dir, t)):
            table.add_row(str(t) if i == 0 else "", name, value)
    console.print(table)
