"""Wall time of one paper-scale self-rewarding iteration, from a 5% slice of it run for real.

    python bench/iteration.py [--fraction 0.05] [--judge generative|single_pass] [--backend auto]

The iteration of Yuan et al. (2024) at the scale recipes/self_reward_paper.yaml sets: 1000 prompts
created by the model, 4 answers each (256 tokens), every answer judged by the 5-point rubric (3
sampled verdicts; or one single-pass verdict with --judge single_pass), best-vs-worst pairs, one
epoch of DPO (batch 2 x 8, max length 768). The bench runs recipes/self_reward_small.yaml on the
bundled SmolLM2-135M-Instruct with those settings and --fraction of the prompts, evaluation off,
in a temporary runs directory, and times each stage from the run's manifest. Every stage's work
grows with the number of prompts, so the full iteration is the slice's time / fraction (model
loads and server starts are counted as if they grew too: the estimate errs long). The last line
is `ITERATION_HOURS=<h>`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from autoalign.config import load_config
from autoalign.loops import iterate

RECIPE = Path(__file__).parents[1] / "recipes" / "self_reward_small.yaml"
PAPER_PROMPTS = 1000


def overrides(args: argparse.Namespace, runs_dir: Path) -> list[str]:
    prompts = round(PAPER_PROMPTS * args.fraction)
    settings = [
        f"runs_dir={runs_dir}",
        "name=bench_iteration",
        f"model.backend={args.backend}",
        f"create_prompts.num_prompts={prompts}",
        f"create_prompts.max_requests={2 * prompts}",
        "create_prompts.sampling.max_new_tokens=256",
        "sample.n=4",
        "sample.sampling.max_new_tokens=256",
        "dpo.epochs=1",
        "dpo.batch_size=2",
        "dpo.grad_accum=8",
        "dpo.max_length=768",
        "eval.enabled=false",
    ]
    if args.judge == "single_pass":
        return settings + ["judge.single_pass=true", "judge.samples=1"]
    return settings + ["judge.samples=3", "judge.sampling.temperature=0.7", "judge.sampling.max_new_tokens=192"]


def stage_seconds(run_dir: Path, started: float) -> list[tuple[str, float]]:
    """Each stage's wall time: from the previous stage's end (the run's start for the first)."""
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    ends = sorted((datetime.fromisoformat(s["finished_at"]).timestamp(), name) for name, s in stages.items())
    timeline, previous = [], started
    for end, name in ends:
        timeline.append((name, max(0.0, end - previous)))
        previous = end
    return timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--judge", choices=["generative", "single_pass"], default="generative")
    parser.add_argument("--backend", default="auto", help="model.backend: auto, transformers, llamacpp, vllm")
    parser.add_argument("--keep", type=Path, help="run in this runs directory and keep it (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.keep or Path(tmp)
        cfg = load_config(RECIPE, overrides(args, runs_dir))
        print(f"slice: {cfg.create_prompts.num_prompts} prompts x {cfg.sample.n} answers, judge {args.judge}")
        started = time.time()
        iterate.run(cfg, log=print)
        wall = time.time() - started
        timeline = stage_seconds(cfg.run_dir, started)
    for name, seconds in timeline:
        print(f"STAGE {name} seconds={seconds:.0f} full_iteration_minutes={seconds / args.fraction / 60:.1f}")
    print(f"slice wall time {wall / 60:.1f} min, backend {cfg.model.backend}, x{1 / args.fraction:.0f}")
    print(f"ITERATION_HOURS={wall / args.fraction / 3600:.2f}")


if __name__ == "__main__":
    main()
