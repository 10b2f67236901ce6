"""The end-of-run summary table, built from the store's metrics files (so a fully cached
re-run prints the same table). Stages are found by the kind the manifest records for them
(samples, judgments, eval, ...), not by their names, so a new loop's stages show up without an
edit here."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from autoalign.eval.paired import FINAL_PAIRED
from autoalign.store import StageRecord, recorded_stages


def stages_of(kind: str, t: int, *dirs: Path | None) -> list[StageRecord]:
    """The finished stages of a kind in iteration t of these stores; a stage name found in an
    earlier store hides the same name in a later one (a branch, then the run it shares with)."""
    found: dict[str, StageRecord] = {}
    for d in dirs:
        if d is not None:
            for record in recorded_stages(d, t, kind):
                found.setdefault(record.name, record)
    return list(found.values())


def _metrics(kind: str, t: int, *dirs: Path | None) -> dict | None:
    """The metrics of the one stage of a kind (prompts, dpo, eval, ...) in iteration t."""
    records = stages_of(kind, t, *dirs)
    return records[0].metrics() if records else None


def _model_metrics(kind: str, t: int, model: str, *dirs: Path | None) -> dict | None:
    """The metrics of the stage of a kind that scored `model` (ifeval)."""
    return next((m for r in stages_of(kind, t, *dirs) if (m := r.metrics()).get("model") == model), None)


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
        for record in recorded_stages(d):
            for label, usage in record.metrics().get("remote", {}).items():
                total = totals.setdefault(label, {})
                for key, value in usage.items():
                    if isinstance(value, int):
                        total[key] = total.get(key, 0) + value
    return totals


def iteration_rows(run_dir: Path, t: int, shared: Path | None = None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if p := _metrics("prompts", t, run_dir, shared):
        rows.append(("prompts created / kept", f"{p['tasks_parsed']} / {p['kept']}  (requests {p['requests']})"))
        rows.append(("prompts dropped", ", ".join(f"{k} {v}" for k, v in sorted(p["dropped"].items())) or "none"))
    if v := _metrics("verifiable_prompts", t, run_dir, shared):
        dropped = ", ".join(f"{k} {n}" for k, n in sorted(v["dropped"].items())) or "none"
        drawn = "attacker" if v.get("attacker") else "uniform"
        rows.append(("verifiable prompts", f"{v['prompts']} ({drawn} constraint draws; dropped: {dropped})"))
    for record in stages_of("samples", t, run_dir, shared):
        c = record.metrics()
        failed = f", {c['failed']} failed" if c.get("failed") else ""
        value = f"{c['candidates']}  (mean {c['mean_tokens']:.0f} tokens, {c['truncated']} hit max tokens{failed})"
        rows.append((f"{record.name.replace('_', ' ')} ({c['model']})", value))
    for record in stages_of("judgments", t, run_dir):
        j = record.metrics()
        who = judge_role(j)
        why = ", ".join(f"{k} {v}" for k, v in sorted(j.get("unparsed_samples", {}).items()))
        parsed = f"{j['parse_rate']:.1%}  ({j['parsed']}/{j['judged']}" + (f"; unparsed: {why})" if why else ")")
        rows.append((f"{who} parse rate", parsed))
        rows.append((f"{who} scores 0..5", "  ".join(f"{k}:{v}" for k, v in j["score_histogram"].items())))
        rows.append((f"{who} mean score", _fmt(j["mean_score"], 2)))
    if c := _metrics("critiques", t, run_dir, shared):
        degenerate = ", ".join(f"{k} {n}" for k, n in sorted(c["degenerate"].items())) or "none"
        rows.append(
            (
                "critic (verifiers + guard)",
                f"{c['all_met']} of {c['answers']} answers meet every constraint, mean score "
                f"{c['mean_score']:.2f}; degenerate: {degenerate}",
            )
        )
    if r := _metrics("refinements", t, run_dir, shared):
        rows.append(("refinements", f"{r['accepted_prompts']} of {r['drafts']} drafts rewritten to pass every check"))
    if r := _metrics("revisions", t, run_dir, shared):
        principles = ", ".join(f"{k} {n}" for k, n in sorted(r["by_principle"].items()))
        rows.append(
            (
                f"constitutional revisions ({r['reviser']})",
                f"{r['revisions']} ({principles}); unchanged {r['unchanged']}, cut off {r['truncated']}",
            )
        )
    if r := _metrics("self_refinements", t, run_dir, shared):
        stops = ", ".join(f"{k} {n}" for k, n in sorted(r["stopped"].items()))
        rows.append(
            (
                f"self-refine ({r['critic']})",
                f"{r['improved']} of {r['prompts']} answers improved, mean {r['mean_rounds']:.1f} rounds; stopped: {stops}",
            )
        )
    if r := _metrics("debates", t, run_dir, shared):
        rows.append(
            (
                f"debates ({r['rounds']} rounds, judge {r['judge']})",
                f"{r['debates']}: decided {r['decided']}, tie {r['ties']}, unparsed {r['unparsed']}",
            )
        )
    for record in stages_of("comparisons", t, run_dir):
        c = record.metrics()
        rows.append(
            (
                f"pairwise comparisons ({c['judge']})",
                f"{c['comparisons']} (both orders): consistent {c['consistent']}, "
                f"order-inconsistent {c['order_inconsistent']}, unparsed {c['unparsed']}",
            )
        )
    rows += oversight_rows(run_dir, t)
    if pr := _metrics("pairs", t, run_dir):
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(pr["dropped"].items())) or "none"
        sources = ", ".join(f"{k} {v}" for k, v in pr.get("by_source", {}).items())
        rows.append(("pairs kept", f"{pr['pairs']} of {pr['prompts']} prompts  ({sources}; dropped: {dropped})"))
    if r := _metrics("rl", t, run_dir):
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items()) if v) or "none"
        rows.append(
            (
                f"{r['algorithm']} reward (samples of M{t})",
                f"mean {_fmt(r['mean_reward'])} over {r['scored']} answers; {r['groups_used']} of {r['prompts']} "
                f"prompts teach (dropped: {dropped})",
            )
        )
        rows.append(
            (
                f"{r['algorithm']} final loss / KL",
                f"{_fmt(r['final_loss'])} / {_fmt(r['final_kl'], 4)}  ({r['steps']} steps, {r['seconds']:.0f}s)",
            )
        )
    if d := _metrics("dpo", t, run_dir):
        rows.append(
            (
                f"{d.get('loss_name', 'dpo')} final loss / acc / margin",
                f"{_fmt(d['final_loss'])} / {_fmt(d['final_accuracy'], 2)} / {_fmt(d['final_margin'])}",
            )
        )
        rows.append(
            (
                "DPO throughput",
                f"{d['pairs_per_second']:.2f} pairs/s  ({d['steps']} steps, {d['seconds']:.0f}s"
                + (", bf16 autocast)" if d.get("autocast") == "bf16" else ")"),
            )
        )
    if e := _metrics("eval", t, run_dir):
        rows.append(
            (
                f"eval {e['new']} vs {e['old']} (judge {e['judge']})",
                f"W/T/L {e['wins']}/{e['ties']}/{e['losses']}, win rate {_fmt(e['win_rate'], 2)}, "
                f"mean score {_fmt(e['new_mean_score'], 2)} vs {_fmt(e['old_mean_score'], 2)}, unscored {e['unscored']}",
            )
        )
    for record in stages_of("head_to_head", t, run_dir):
        h = record.metrics()
        rows.append((f"head to head {h['model']} vs {h['baseline']}", head_to_head_line(h)))
    for m in ifeval_metrics(run_dir, t):
        rows.append((f"IFEval {m['model']} ({m['prompts']} prompts)", ifeval_line(m)))
    for record in stages_of("ifeval_paired", t, run_dir):
        m = record.metrics()
        rows.append((f"IFEval {m['model']} vs {m['baseline']}, paired", ifeval_paired_line(m)))
    for m in reward_modeling_metrics(run_dir, t):
        rows.append((f"{m['judge']} as a judge", reward_modeling_line(m)))
    return rows


def ifeval_paired_line(m: dict) -> str:
    d = m["prompt_strict"]
    if d is None:
        return "no prompts in common"
    held, trained = m["instruction_strict_held_out"], m["instruction_strict_trained"]
    return (
        f"prompt strict {d['baseline']:.1f}% -> {d['model']:.1f}% ({_difference(d)}, "
        f"sign test p={d['sign_test_p']:.2g}); instruction strict on "
        f"held-out types {_pct(held['baseline'])} -> {_pct(held['model'])}, trained types "
        f"{_pct(trained['baseline'])} -> {_pct(trained['model'])}; mean length {m['mean_chars']['baseline']:.0f} -> "
        f"{m['mean_chars']['model']:.0f} chars"
    )


def _difference(d: dict) -> str:
    """A paired difference in points with its interval (eval/paired.py)."""
    return f"{d['difference']:+.1f} points, 95% CI [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def judge_role(judgments: dict) -> str:
    """Who judged, as the judging stage recorded it (self-judge, teacher judge, verifier)."""
    if role := judgments.get("judge_role"):
        return role
    return "verifier" if judgments.get("judge_kind") == "verifier" else f"judge {judgments['judge']}"


def ifeval_metrics(run_dir: Path, t: int) -> list[dict]:
    return [r.metrics() for kind in ("ifeval", "ifeval_final") for r in stages_of(kind, t, run_dir)]


def reward_modeling_metrics(run_dir: Path, t: int) -> list[dict]:
    return [r.metrics() for r in stages_of("reward_modeling", t, run_dir)]


def oversight_rows(run_dir: Path, t: int) -> list[tuple[str, str]]:
    """The routed critic (loop: critic): its calibration, where its items went, the people's answers."""
    rows = []
    if m := _metrics("critic_reward_model", t, run_dir):
        trained = f"{m['base']}, trained on {m['trained_on']} labelled pairs ({m['seconds']} s)"
        rows.append(("critic: reward model", trained))
    if c := _metrics("critic_calibration", t, run_dir):
        lo, hi = c["error_interval"]
        cross = c["cross_fitted"]
        rows.append(
            (
                f"critic calibration ({c['slice']} pairs, accuracy {_pct(c['accuracy'])})",
                f"trusts {_pct(c['coverage'])} at error {_pct(c['error'])} [95% CI {_pct(lo)}, {_pct(hi)}] "
                f"(target {_pct(c['target_error'])}, {c.get('trust_bound', 'point')} value); "
                f"cross-fitted: {_pct(cross['coverage'])} at {_pct(cross['error'])}",
            )
        )
        if (length := c.get("length")) and length["shorter_is_better"] is not None:
            rows.append(
                (
                    "critic vs the length shortcut",
                    f"the shorter answer is better on {_pct(length['shorter_is_better'])}; the critic is right on "
                    f"{_pct(length['critic_where_shorter_is_better'])} of those and "
                    f"{_pct(length['critic_where_longer_is_better'])} of the rest ({length['pairs'][1]} pairs)",
                )
            )
    if r := _metrics("routing", t, run_dir):
        shares = ", ".join(f"{route} {_pct(share)}" for route, share in r["shares"].items())
        rows.append((f"routing ({r['items']} items)", shares))
    if w := _metrics("w2s_result", t, run_dir):
        for variant, r in w["results"].items():
            rows.append((f"weak-to-strong, {variant} ({w['weak']} -> {w['strong']}, {r['n']} test pairs)", w2s_line(r)))
    for record in stages_of("source_pairs", t, run_dir):
        if record.name == "pairs_critic" and (m := record.metrics()).get("human_labels") is not None:
            rows.append(("human answers used", f"{len(m['human_labels'])} -> {m['human_pairs']} pairs"))
    return rows


def w2s_line(r: dict) -> str:
    """Accuracies of the weak supervisor, the student on its labels and the ceiling, and PGR, with intervals."""
    ci = lambda pair: f"[{_fmt(pair[0], 2)}, {_fmt(pair[1], 2)}]"
    accuracies = ", ".join(
        f"{name} {_fmt(r[key], 3)} {ci(r['intervals'][key])}"
        for name, key in (("weak", "weak"), ("strong on weak", "strong_on_weak"), ("ceiling", "ceiling"))
    )
    return f"{accuracies}; PGR {_fmt(r['pgr'], 2)} {ci(r['pgr_interval'])}"


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
    if s := _metrics("sft", 0, shared or run_dir):
        label = "SFT final loss (shared M1)" if shared else "SFT final loss"
        table.add_row("0", label, f"{_fmt(s['final_loss'])}  ({s['examples']} examples, {s['steps']} steps)")
    for t in range(1, iterations + 1):
        for i, (name, value) in enumerate(iteration_rows(run_dir, t, shared)):
            table.add_row(str(t) if i == 0 else "", name, value)
    return table


def last_iteration(run_dir: Path) -> int | None:
    """The highest iteration with a finished evaluation, read from the manifest."""
    return max((r.iteration for r in recorded_stages(run_dir, kind="eval")), default=None)


def verdict(run_dir: Path, shared: Path | None = None) -> str:
    """One line: did the newest model beat the one it came from? From the last iteration's
    evaluation: the head-to-head win rate with its interval (a difference counts only beyond two
    standard errors of 50%), the judge's mean scores, and IFEval when it ran."""
    t = last_iteration(run_dir)
    if t is None:
        return "no evaluation finished yet"
    ev = _metrics("eval", t, run_dir)
    new, old = ev["new"], ev["old"]
    parts = []
    if h := _metrics("head_to_head", t, run_dir):
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
    records = stages_of("ifeval_paired", t, run_dir)
    step = [r for r in records if not r.name.startswith(FINAL_PAIRED)]
    paired = next((m for r in step if (m := r.metrics())["baseline"] == old), None)
    if paired and paired["prompt_strict"]:
        parts.append(f"IFEval prompt strict {_difference(paired['prompt_strict'])}")
        return f"{new} vs {old}: " + "; ".join(parts) + _against_start(records, new, old)
    new_if = _model_metrics("ifeval", t, new, run_dir)
    places = [(t, run_dir), (t - 1, run_dir)] + ([(1, shared)] if shared else [])
    old_if = next((m for i, d in places if (m := _model_metrics("ifeval", i, old, d))), None)
    if new_if and old_if:
        parts.append(f"IFEval prompt loose {_pct(new_if['prompt_loose'])} vs {_pct(old_if['prompt_loose'])}")
    return f"{new} vs {old}: " + "; ".join(parts) + _against_start(records, new, old)


def _against_start(records: list[StageRecord], new: str, old: str) -> str:
    """The last model against M1 (a paired IFEval comparison other than the iteration's own)."""
    for record in sorted(records, key=lambda r: not r.name.startswith(FINAL_PAIRED)):
        m = record.metrics()
        if m["model"] == new and (m["baseline"] != old or record.name.startswith(FINAL_PAIRED)):
            if m["prompt_strict"]:
                where = f"{m['prompts']} IFEval prompts"
                return f". {new} vs {m['baseline']} on {where}: prompt strict {_difference(m['prompt_strict'])}"
    return ""


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
    ("ifeval_strict", "IFEval prompt strict"),
    ("ifeval_vs_m1", "strict vs M1 [95% CI]"),
    ("optimizer", "optimiser"),
    ("pairs", "pairs / answers"),
    ("dpo_loss", "final loss"),
    ("dpo_acc", "DPO acc"),
    ("dpo_margin", "DPO margin"),
    ("train_seconds", "train s"),
]
"""(row key, column title) of the paradigm comparison table, in the terminal and the report."""


def comparison_rows(run_dir: Path, branches: list[str], iteration: int = 1) -> list[dict]:
    """One row per model: M1, then the M2 of each branch, with its evaluation against M1."""
    rows = []
    evals = [e for s in branches if (e := _metrics("eval", iteration, run_dir / s))]
    if evals:  # the starting model, as scored in the first evaluation (same judge and prompts in all)
        start = evals[0]["old"]
        ifeval = _model_metrics("ifeval", 1, start, run_dir) or {}
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
        pairs = _metrics("pairs", iteration, b) or {}
        dpo = _metrics("dpo", iteration, b) or {}
        rl = _metrics("rl", iteration, b) or {}
        ev = _metrics("eval", iteration, b) or {}
        h2h = _metrics("head_to_head", iteration, b) or {}
        ifeval = (_model_metrics("ifeval", iteration, ev["new"], b) or {}) if ev else {}
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
                "ifeval_strict": ifeval.get("prompt_strict"),
                "ifeval_vs_m1": _strict_against_start(b, iteration),
                "optimizer": rl.get("algorithm") or dpo.get("loss_name"),
                "pairs": pairs.get("pairs") if dpo else rl.get("answers"),
                "dpo_loss": (dpo or rl).get("final_loss"),
                "dpo_acc": dpo.get("final_accuracy"),
                "dpo_margin": dpo.get("final_margin"),
                "train_seconds": (dpo or rl).get("seconds"),
            }
        )
    return rows


def _strict_against_start(branch_dir: Path, iteration: int) -> str | None:
    """The branch's model against M1, IFEval prompt strict paired (the final set if evaluated)."""
    records = sorted(
        stages_of("ifeval_paired", iteration, branch_dir), key=lambda r: not r.name.startswith(FINAL_PAIRED)
    )
    for record in records:
        if (strict := record.metrics().get("prompt_strict")) and record.metrics()["baseline"] == "M1":
            return _difference(strict)
    return None


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


def inference_rows(run_dir: Path) -> tuple[str, list[dict]]:
    """loop=inference_time: (baseline, one row per method) from runs/<name>/inference_time.json."""
    from autoalign.config.evaluation import INFERENCE_TABLE
    from autoalign.io import read_json

    table = read_json(run_dir / INFERENCE_TABLE)
    rows = []
    for method, m in table["methods"].items():
        strict, h2h = m["prompt_strict"], m.get("head_to_head") or {}
        se = h2h.get("standard_error")
        rows.append({
            "method": method + (" (oracle)" if m["oracle"] else ""),
            "strict": strict["model"],
            "vs_baseline": f"{strict['difference']:+.1f} [{strict['ci_low']:+.1f}, {strict['ci_high']:+.1f}]",
            "gained_lost": f"{strict['gained']}/{strict['lost']}",
            "win_rate": None if h2h.get("win_rate") is None else
            f"{h2h['win_rate']:.0f}%" + (f" ± {1.96 * se:.0f}" if se is not None else "") + f" (n={h2h['n']})",
            "tokens": m["tokens_per_prompt"],
            "seconds": m["seconds_per_prompt"],
        })  # fmt: skip
    return table["baseline"], rows


INFERENCE_COLUMNS = [
    ("method", "method"),
    ("strict", "IFEval prompt strict %"),
    ("vs_baseline", "vs baseline [95% CI]"),
    ("gained_lost", "gained/lost"),
    ("win_rate", "head to head (win rate, ±95%)"),
    ("tokens", "tokens/prompt"),
    ("seconds", "s/prompt"),
]


def print_inference_table(run_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    baseline, rows = inference_rows(run_dir)
    table = Table(title=f"inference-time methods: {run_dir} (baseline: {baseline})")
    for _, title in INFERENCE_COLUMNS:
        table.add_column(title)
    for row in rows:
        table.add_row(*[_fmt(row.get(key), 1) for key, _ in INFERENCE_COLUMNS])
    console.print(table)
    console.print(
        "win rate: the method's share of the judged comparisons against the baseline (ties half; 50% = even), "
        "by the recipe's judge; "
        "oracle: the method reads the IFEval checks it is scored by"
    )
