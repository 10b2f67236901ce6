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
            rows.append(
                (
                    name.replace("_", " "),
                    f"{c['candidates']}  (mean {c['mean_tokens']:.0f} tokens, {c['truncated']} hit max tokens{failed})",
                )
            )
    for name, who in (("judgments", "self-judge"), ("teacher_judgments", "teacher judge")):
        if j := _metrics(run_dir, f"iter_{t}/{name}"):
            who = "verifier" if j.get("judge_kind") == "verifier" else who
            why = ", ".join(f"{k} {v}" for k, v in sorted(j.get("unparsed_samples", {}).items()))
            rows.append(
                (
                    f"{who} parse rate",
                    f"{j['parse_rate']:.1%}  ({j['parsed']}/{j['judged']}" + (f"; unparsed: {why})" if why else ")"),
                )
            )
            rows.append((f"{who} scores 0..5", "  ".join(f"{k}:{v}" for k, v in j["score_histogram"].items())))
            rows.append((f"{who} mean score", _fmt(j["mean_score"], 2)))
    if c := _metrics(run_dir, f"iter_{t}/comparisons"):
        rows.append(
            (
                "teacher comparisons",
                f"{c['comparisons']} (both orders): consistent {c['consistent']}, "
                f"order-inconsistent {c['order_inconsistent']}, unparsed {c['unparsed']}",
            )
        )
    if pr := _metrics(run_dir, f"iter_{t}/pairs"):
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(pr["dropped"].items())) or "none"
        sources = ", ".join(f"{k} {v}" for k, v in pr.get("by_source", {}).items())
        rows.append(("pairs kept", f"{pr['pairs']} of {pr['prompts']} prompts  ({sources}; dropped: {dropped})"))
    if d := _metrics(run_dir, f"iter_{t}/dpo"):
        rows.append(
            (
                "DPO final loss / acc / margin",
                f"{_fmt(d['final_loss'])} / {_fmt(d['final_accuracy'], 2)} / {_fmt(d['final_margin'])}",
            )
        )
        rows.append(
            ("DPO throughput", f"{d['pairs_per_second']:.2f} pairs/s  ({d['steps']} steps, {d['seconds']:.0f}s)")
        )
    if e := _metrics(run_dir, f"iter_{t}/eval"):
        rows.append(
            (
                f"eval {e['new']} vs {e['old']} (judge {e['judge']})",
                f"W/T/L {e['wins']}/{e['ties']}/{e['losses']}, win rate {_fmt(e['win_rate'], 2)}, "
                f"mean score {_fmt(e['new_mean_score'], 2)} vs {_fmt(e['old_mean_score'], 2)}, unscored {e['unscored']}",
            )
        )
    if h := _metrics(run_dir, f"iter_{t}/eval_h2h"):
        rows.append((f"head to head {h['model']} vs {h['baseline']}", head_to_head_line(h)))
    for m in ifeval_metrics(run_dir / f"iter_{t}"):
        rows.append((f"IFEval {m['model']} ({m['prompts']} prompts)", ifeval_line(m)))
    for m in reward_modeling_metrics(run_dir / f"iter_{t}"):
        rows.append((f"{m['judge']} as a judge", reward_modeling_line(m)))
    return rows


def ifeval_metrics(d: Path) -> list[dict]:
    """The IFEval scores stored in one iteration directory: the ifeval_<label> stages, not the
    ifeval_answers_<label> stages they score."""
    return [
        read_json(p) for p in sorted(d.glob("ifeval_*/metrics.json")) if not p.parent.name.startswith("ifeval_answers_")
    ]


def reward_modeling_metrics(d: Path) -> list[dict]:
    return [read_json(p) for p in sorted(d.glob("reward_modeling_*/metrics.json"))]


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _with_se(value, se) -> str:
    return "-" if value is None else f"{value:.1f}" + ("" if se is None else f" ± {se:.1f}")


def head_to_head_line(h: dict) -> str:
    return (
        f"W/T/L {h['wins']}/{h['ties']}/{h['losses']}, unparsed {h['unparsed']}, order consistency {_pct(h['order_consistency'])}, "
        f"win rate {_with_se(h['win_rate'], h['standard_error'])}, LC win rate {_with_se(h['lc_win_rate'], h['lc_standard_error'])}"
    )


def ifeval_line(m: dict) -> str:
    return (
        f"prompt strict {_pct(m['prompt_strict'])} / loose {_pct(m['prompt_loose'])}, "
        f"instruction strict {_pct(m['instruction_strict'])} / loose {_pct(m['instruction_loose'])}"
    )


def reward_modeling_line(m: dict) -> str:
    corr = lambda v: "-" if v is None else f"{v:.2f}"
    return (
        f"coverage {_pct(m['coverage'])}, pairwise accuracy {_pct(m['pairwise_accuracy'])}, 5-best {_pct(m['five_best'])}, "
        f"exact {_pct(m['exact_match'])}, Spearman {corr(m['spearman'])}, Kendall tau-b {corr(m['kendall_tau_b'])}"
    )


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


def last_iteration(run_dir: Path) -> int | None:
    """The highest iteration with a finished evaluation, read from the manifest."""
    path = run_dir / "manifest.json"
    stages = read_json(path)["stages"] if path.exists() else {}
    done = [int(rel.split("/")[0].removeprefix("iter_")) for rel in stages if rel.endswith("/eval")]
    return max(done) if done else None


def verdict(run_dir: Path, shared: Path | None = None) -> str:
    """One line: did the newest model beat the one it came from? From the last iteration's
    evaluation: the head-to-head win rate with its interval (a difference counts only beyond two
    standard errors of 50%), the judge's mean scores, and IFEval when it ran."""
    t = last_iteration(run_dir)
    if t is None:
        return "no evaluation finished yet"
    ev = _metrics(run_dir, f"iter_{t}/eval")
    new, old = ev["new"], ev["old"]
    parts = []
    if h := _metrics(run_dir, f"iter_{t}/eval_h2h"):
        rate, se = h.get("win_rate"), h.get("standard_error")
        if rate is None:
            parts.append("head to head: no parsed verdict")
        else:
            if se is None or abs(rate - 50) <= 2 * se:
                call = "no clear difference"
            else:
                call = f"{new} better" if rate > 50 else f"{old} better"
            parts.append(
                f"{call} head to head (win rate {_with_se(rate, se)}%, W/T/L {h['wins']}/{h['ties']}/{h['losses']})"
            )
    parts.append(f"judge score {_fmt(ev['new_mean_score'], 2)} vs {_fmt(ev['old_mean_score'], 2)}")
    # The older model's IFEval was run where it was the newer model (or, for M1 of a comparison,
    # in the shared store).
    new_if = _metrics(run_dir, f"iter_{t}/ifeval_{new}")
    places = [(run_dir, t), (run_dir, t - 1)] + ([(shared, 1)] if shared else [])
    old_if = next((m for d, i in places if (m := _metrics(d, f"iter_{i}/ifeval_{old}"))), None)
    if new_if and old_if:
        parts.append(f"IFEval prompt loose {_pct(new_if['prompt_loose'])} vs {_pct(old_if['prompt_loose'])}")
    return f"{new} vs {old}: " + "; ".join(parts)


def print_summary(run_dir: Path, iterations: int, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]verdict[/] {verdict(run_dir)}")
    table = run_table(f"autoalign run: {run_dir}", run_dir, iterations)
    for label, u in remote_totals(run_dir).items():
        table.add_row("all", f"requests to {label}", _remote_line(u))
    console.print(table)


def _remote_line(u: dict) -> str:
    return (
        f"{u['requests']} requests ({u['retries']} retries, {u['cache_hits']} from cache, {u['failed']} failed), "
        f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens"
    )


COMPARISON_COLUMNS = [
    ("model", "model"),
    ("source", "feedback"),
    ("mean_score", "mean judge score"),
    ("wtl", "score W/T/L vs M1"),
    ("win_rate", "score win rate"),
    ("unscored", "unscored"),
    ("h2h_wtl", "pairwise W/T/L"),
    ("h2h_win_rate", "win rate % vs M1"),
    ("lc_win_rate", "LC win rate %"),
    ("ifeval", "IFEval prompt loose"),
    ("pairs", "pairs"),
    ("dpo_loss", "DPO loss"),
    ("dpo_acc", "DPO acc"),
    ("dpo_margin", "DPO margin"),
]
"""(row key, column title) of the paradigm comparison table, in the terminal and the report."""


def comparison_rows(run_dir: Path, branches: list[str], iteration: int = 1) -> list[dict]:
    """One row per model: M1, then the M2 of each branch, with its evaluation against M1."""
    rows = []
    evals = [e for s in branches if (e := _metrics(run_dir / s, f"iter_{iteration}/eval"))]
    if evals:  # the starting model, as scored in the first evaluation (same judge and prompts in all)
        start = evals[0]["old"]
        ifeval = _metrics(run_dir, f"iter_1/ifeval_{start}") or {}
        rows.append(
            {
                "model": f"{start} (start)",
                "source": "-",
                "judge": evals[0]["judge"],
                "mean_score": evals[0]["old_mean_score"],
                "ifeval": ifeval.get("prompt_loose"),
            }
        )
    for source in branches:
        b = run_dir / source
        pairs = _metrics(b, f"iter_{iteration}/pairs") or {}
        dpo = _metrics(b, f"iter_{iteration}/dpo") or {}
        ev = _metrics(b, f"iter_{iteration}/eval") or {}
        h2h = _metrics(b, f"iter_{iteration}/eval_h2h") or {}
        ifeval = (_metrics(b, f"iter_{iteration}/ifeval_{ev['new']}") or {}) if ev else {}
        rows.append(
            {
                "h2h_wtl": f"{h2h['wins']}/{h2h['ties']}/{h2h['losses']}" if h2h else None,
                "h2h_win_rate": h2h.get("win_rate"),
                "lc_win_rate": h2h.get("lc_win_rate"),
                "ifeval": ifeval.get("prompt_loose"),
                "model": ev.get("new", f"M{iteration + 1}" if dpo else "none (no pairs)"),
                "source": source,
                "judge": ev.get("judge"),
                "mean_score": ev.get("new_mean_score"),
                "wtl": f"{ev['wins']}/{ev['ties']}/{ev['losses']}" if ev else None,
                "win_rate": ev.get("win_rate"),
                "unscored": ev.get("unscored"),
                "pairs": pairs.get("pairs"),
                "dpo_loss": dpo.get("final_loss"),
                "dpo_acc": dpo.get("final_accuracy"),
                "dpo_margin": dpo.get("final_margin"),
            }
        )
    return rows


def print_comparison(run_dir: Path, branches: list[str], iterations: int = 1, console: Console | None = None) -> None:
    """The paradigm comparison of a run with `branches`: per-branch details, then one table."""
    console = console or Console()
    for source in branches:
        console.print(f"[bold]verdict {source}[/] {verdict(run_dir / source, shared=run_dir)}")
    for source in branches:
        console.print(run_table(f"branch {source}", run_dir / source, iterations, shared=run_dir))
    rows = comparison_rows(run_dir, branches, iterations)
    table = Table(title=f"paradigm comparison: {run_dir}")
    for _, title in COMPARISON_COLUMNS:
        table.add_column(title)
    for row in rows:
        table.add_row(*[_fmt(row.get(key), 2) for key, _ in COMPARISON_COLUMNS])
    console.print(table)
    if rows and rows[0]["judge"]:
        console.print(f"judge: {rows[0]['judge']}")
    for label, u in remote_totals(run_dir, *[run_dir / s for s in branches]).items():
        console.print(f"requests to {label}: {_remote_line(u)}")
