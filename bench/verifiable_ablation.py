"""Which sources and settings of the verifiable-instruction loop produce the gain: one run per
variant (a recipe plus overrides), its final model evaluated on IFEval (greedy), and the paired
difference with M1 on the same prompts.

    python bench/verifiable_ablation.py [--recipe recipes/verifiable_if_small.yaml]
        [--variants recipe,samples_only,...] [--limit 541] [--runs-dir runs/ablation] [--backend auto]

Runs and evaluations are stores under --runs-dir: a re-run skips what is done (and an
interrupted variant resumes). One line per variant:
`ABLATION variant=<name> prompt_strict=<points> ci_low=<points> ci_high=<points> p=<p>
pairs=<n> run_minutes=<m> mean_chars=<c> short_answers=<n>` (prompt_strict: the final model minus
M1; short_answers: final-model answers of fewer than 3 words).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from autoalign.config.feedback import HELD_OUT_CONSTRAINTS
from autoalign.eval.paired import ifeval_paired_metrics
from autoalign.verifiers.ifeval import load_ifeval
from ifeval_gain import scored_rows  # bench/ is the script's directory, so on sys.path

VARIANTS: dict[str, list[str]] = {
    "recipe": [],
    "no greedy answer, no off-task guard": ["verifiable.greedy_candidate=false", "verifiable.off_task_check=false"],
    "samples only": ["mix={verified_samples: 1.0}"],
    "repair only": ["mix={verified_repair: 1.0}"],
    "+ refinement": ["mix.verified_refine=1.0"],
    "no NLL term": ["dpo.sft_weight=0"],
    "fp32 DPO": ["dpo.autocast=off"],
    "2 iterations": ["iterations=2"],
    "2 iterations, no attacker": ["iterations=2", "verifiable.attacker=false"],
}
"""Overrides on top of the recipe (verifiable_if_small.yaml: samples + repair, the greedy answer
among the samples, the off-task guard, bf16 DPO), which is the row without overrides. The
attacker acts from the second iteration on, so it is compared over two."""


def run(command: list[str], log: Path) -> str:
    """The command's output (both streams; also appended to log). Wide lines: paths stay on one line."""
    env = {**os.environ, "COLUMNS": "1000"}
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    with log.open("a") as out:
        out.write(done.stdout)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return done.stdout


def evaluate(model: str, store: Path, limit: int, max_new_tokens: int, backend: str) -> Path:
    """The model's IFEval answers (a stage directory of `autoalign eval ifeval`)."""
    out = run(
        ["autoalign", "eval", "ifeval", "--model", model, "--limit", str(limit), "--batch-size", "32"]
        + ["--max-new-tokens", str(max_new_tokens), "--backend", backend, "--out", str(store)],
        store.parent / "eval.log",
    )
    found = re.search(r"results in (\S+)", out)
    if not found:
        sys.exit(f"no results directory in the output of autoalign eval ifeval:\n{out}")
    return Path(found.group(1))


def slug(name: str) -> str:
    """A variant's name as --variants takes it and its run is named: "no NLL term" -> no_nll_term."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def short_answers(rows: list[dict]) -> int:
    """Answers of fewer than 3 words: the degenerate greedy modes (a loop of `***`, "The End.")."""
    return sum(len(re.findall(r"\w+", r["response"])) < 3 for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/verifiable_if_small.yaml")
    parser.add_argument("--variants", default=",".join(map(slug, VARIANTS)), help="comma-separated slugs")
    parser.add_argument("--limit", type=int, default=541, help="IFEval prompts evaluated (the first N)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--baseline", default="smollm2-135m-instruct", help="M1 (the recipe's model)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/ablation"))
    parser.add_argument(
        "--backend",
        default="transformers",
        help="generation backend of the runs and the evaluations (llamacpp: faster)",
    )
    args = parser.parse_args()
    by_slug = {slug(name): name for name in VARIANTS}
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(by_slug))
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; known: {sorted(by_slug)}")
    names = [by_slug[v] for v in wanted]
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    items = {item.key: item for item in load_ifeval("builtin:ifeval_input_data.jsonl")}
    store = args.runs_dir / "ifeval"
    # Both sides of every comparison are answered by the same backend (greedy decoding is not bit-equal across them).
    baseline = scored_rows(evaluate(args.baseline, store, args.limit, args.max_new_tokens, args.backend), items)
    for name in names:
        started = time.perf_counter()
        command = ["autoalign", "run", args.recipe, f"name=ablation_{slug(name)}", f"runs_dir={args.runs_dir}"]
        overrides = ["eval.enabled=false", f"model.backend={args.backend}", *VARIANTS[name]]
        out = run(command + overrides, args.runs_dir / f"{slug(name)}.log")
        minutes = (time.perf_counter() - started) / 60
        final = re.search(r"final model: (\S+)", out)
        if not final:
            sys.exit(f"{name}: no 'final model:' line in the run's output")
        answers = evaluate(final.group(1), store, args.limit, args.max_new_tokens, args.backend)
        model = scored_rows(answers, items)
        m = ifeval_paired_metrics(model, baseline, HELD_OUT_CONSTRAINTS)
        s = m["prompt_strict"]
        pairs = sum(
            json.loads(p.read_text())["pairs"]
            for p in (args.runs_dir / f"ablation_{slug(name)}").glob("iter_*/pairs/metrics.json")
        )
        print(
            f"ABLATION variant={name!r} prompt_strict={s['difference']:+.1f} ci_low={s['ci_low']:+.1f} "
            f"ci_high={s['ci_high']:+.1f} p={s['sign_test_p']:.3g} pairs={pairs} run_minutes={minutes:.1f} "
            f"mean_chars={m['mean_chars']['model']:.0f} short_answers={short_answers(model)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
