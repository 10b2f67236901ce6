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


def remote_totals(*dirs: Path) -> dict[str, dict]:
    """Requests, retries, failures and tokens per endpoint, summed over every stage."""
    totals: dict[str, dict] = {}
    for d in dirs:
        for path in sorted(d.glob("iter_*/*/metrics.json")):
            for label, usage in read_json(path).get("remote", {}).items():
                total = totals.setdefault(label, {})
                for key, value in usage.items():
                    if isinstance(value, int):
                        total[key] = total.get(key, 0) + value
    return totals


def iteration_rows(run_dir: Path, t: int, shared: Path | None = None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if p := _metrics(run_dir, f"iter_{t}/prompts") or (shared and _metrics(shared, f"iter_{t}/prompts")):
        rows.append(("prompts created / kept", f"{p['tasks_parsed']} / {p['kept']}  (requests {p['requests']})"))
        rows.append(("prompts dropped", ", ".join(f"{k} {v}" for k, v in sorted(p["dropped"].items())) or "none"))
    for name in ("candidates", "teacher_answers", "gold_samples"):
        if c := _metrics(run_dir, f"iter_{t}/{name}") or (shared and _metrics(shared, f"iter_{t}/{name}")):
            failed = f", {c['failed']} failed" if c.get("failed") else ""
            rows.append((name.replace("_", " "), f"{c['candidates']}  (mean {c['mean_tokens']:.0f} tokens, {c['truncated']} hit max tokens{failed})"))
    for name, who in (("judgments", "self-judge"), ("teacher_judgments", "teacher judge")):
        if j := _metrics(run_dir, f"iter_{t}/{name}"):
            rows.append((f"{who} parse rate", f"{j['parse_rate']:.1%}  ({j['parsed']}/{j['judged']})"))
            rows.append((f"{who} scores 0..5", "  ".join(f"{k}:{v}" for k, v in j["score_histogram"].items())))
            rows.append((f"{who} mean score", _fmt(j["mean_score"], 2)))
    if c := _metrics(run_dir, f"iter_{t}/comparisons"):
        rows.append(("teacher comparisons", f"{c['comparisons']} (both orders): consistent {c['consistent']}, "
                                            f"order-inconsistent {c['order_inconsistent']}, unparsed {c['unparsed']}"))
    if pr := _metrics(run_dir, f"iter_{t}/pairs"):
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(pr["dropped"].items())) or "none"
        sources = ", ".join(f"{k} {v}" for k, v in pr.get("by_source", {}).items())
        rows.append(("pairs kept", f"{pr['pairs']} of {pr['prompts']} prompts  ({sources}; dropped: {dropped})"))
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


def run_table(title: str, run_dir: Path, iterations: int, shared: Path | None = None) -> Table:
    """iteration / measure / value rows for one run (or one branch, whose SFT and shared stages
    live in `shared`)."""
    table = Table(title=title)
    table.add_column("iteration")
    table.add_column("measure")
    table.add_column("value")
    if s := _metrics(shared or run_dir, "iter_0/sft"):
        label = "SFT final loss (shared M1)" if shared else "SFT final loss"
        table.add_row("0", label, f"{_fmt(s['final_loss'])}  ({s['examples']} examples, {s['steps']} steps)")
    for t in range(1, iterations + 1):
        for i, (name, value) in enumerate(iteration_rows(run_dir, t, shared)):
            table.add_row(str(t) if i == 0 else "", name, value)
    return table


def print_summary(run_dir: Path, iterations: int, console: Console | None = None) -> None:
    console = console or Console()
    table = run_table(f"autoalign run: {run_dir}", run_dir, iterations)
    for label, u in remote_totals(run_dir).items():
        table.add_row("all", f"requests to {label}", _remote_line(u))
    console.print(table)


def _remote_line(u: dict) -> str:
    return (f"{u['requests']} requests ({u['retries']} retries, {u['cache_hits']} from cache, {u['failed']} failed), "
            f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens")


def comparison_rows(run_dir: Path, branches: list[str], iteration: int = 1) -> list[dict]:
    """One row per model: M1, then the M2 of each branch, with its evaluation against M1."""
    rows = []
    evals = [e for s in branches if (e := _metrics(run_dir / s, f"iter_{iteration}/eval"))]
    if evals:  # the starting model, as scored in the first evaluation (same judge and prompts in all)
        rows.append({"model": f"{evals[0]['old']} (start)", "source": "-", "judge": evals[0]["judge"], "mean_score": evals[0]["old_mean_score"]})
    for source in branches:
        b = run_dir / source
        pairs = _metrics(b, f"iter_{iteration}/pairs") or {}
        dpo = _metrics(b, f"iter_{iteration}/dpo") or {}
        ev = _metrics(b, f"iter_{iteration}/eval") or {}
        rows.append({
            "model": ev.get("new", f"M{iteration + 1}" if dpo else "none (no pairs)"), "source": source, "judge": ev.get("judge"),
            "mean_score": ev.get("new_mean_score"), "wtl": f"{ev['wins']}/{ev['ties']}/{ev['losses']}" if ev else None,
            "win_rate": ev.get("win_rate"), "unscored": ev.get("unscored"), "pairs": pairs.get("pairs"),
            "dpo_loss": dpo.get("final_loss"), "dpo_acc": dpo.get("final_accuracy"), "dpo_margin": dpo.get("final_margin"),
        })
    return rows


def print_comparison(run_dir: Path, branches: list[str], iterations: int = 1, console: Console | None = None) -> None:
    """The paradigm comparison of a run with `branches`: per-branch details, then one table."""
    console = console or Console()
    for source in branches:
        console.print(run_table(f"branch {source}", run_dir / source, iterations, shared=run_dir))
    rows = comparison_rows(run_dir, branches, iterations)
    table = Table(title=f"paradigm comparison: {run_dir}")
    columns = [("model", "model"), ("source", "feedback"), ("mean_score", "mean judge score"), ("wtl", "W/T/L vs M1"), ("win_rate", "win rate"),
               ("unscored", "unscored"), ("pairs", "pairs"), ("dpo_loss", "DPO loss"), ("dpo_acc", "DPO acc"), ("dpo_margin", "DPO margin")]
    for _, title in columns:
        table.add_column(title)
    for row in rows:
        table.add_row(*[_fmt(row.get(key), 2) for key, _ in columns])
    console.print(table)
    if rows and rows[0]["judge"]:
        console.print(f"judge: {rows[0]['judge']}")
    for label, u in remote_totals(run_dir, *[run_dir / s for s in branches]).items():
        console.print(f"requests to {label}: {_remote_line(u)}")
