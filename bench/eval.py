"""Cost of the evaluation suite's own computation (no model): IFEval scoring of all 541 prompts,
the length-controlled win rate with its bootstrap, collapse monitors, and writing a run's report.

    python bench/eval.py [--run runs/quickstart]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autoalign.verifiers.ifeval import accuracy, load_ifeval, score_response
from autoalign.eval.monitors import sample_monitors
from autoalign.eval.win_rate import length_controlled_win_rate
from autoalign.types import Candidate


def timed(label: str, fn, repeat: int = 1):
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    seconds = (time.perf_counter() - start) / repeat
    print(f"{label}: {seconds * 1000:.1f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", help="a run directory to write the report of")
    args = parser.parse_args()
    items = load_ifeval("builtin:ifeval_input_data.jsonl")
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while rivers run past stones".split()
    responses = [" ".join(rng.choice(words, 250)) + "." for _ in items]  # ~250-word answers
    results = timed(
        "IFEval scoring, 541 prompts x 250 words (strict + loose)",
        lambda: [score_response(i, r) for i, r in zip(items, responses)],
    )
    accuracy(results, items)
    n = 805  # AlpacaEval's prompt count
    values = list(1 + rng.random(n))
    lengths = list(rng.integers(100, 2000, n))
    timed(
        f"length-controlled win rate, {n} prompts, 200 bootstrap refits",
        lambda: length_controlled_win_rate(values, lengths, list(rng.integers(100, 2000, n))),
    )
    candidates = {
        f"p{i}": [Candidate(" ".join(rng.choice(words, 120)), 160, "stop") for _ in range(4)] for i in range(1000)
    }
    timed("collapse monitors, 1000 prompts x 4 samples (distinct-n, self-BLEU)", lambda: sample_monitors(candidates))
    if args.run:
        from autoalign.report import write_report

        timed(f"report for {args.run}", lambda: write_report(args.run))


if __name__ == "__main__":
    main()
