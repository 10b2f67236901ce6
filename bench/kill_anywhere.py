"""Kill anywhere on the bundled model: the quickstart loop (SmolLM2-135M-Instruct, verifiable
instructions, 2 iterations, scaled down) is killed with SIGKILL at 10 seeded points of its stage
timeline, resumed each time with the same `autoalign run` command, and compared file by file with
an uninterrupted run (tests/kill_harness.py; tests/test_kill_anywhere.py does the same on the
tiny model in CI).

    python bench/kill_anywhere.py [--seed 15] [--points 10] [--prompts 8] [--keep DIR]

Prints each kill point, then `KILL_ANYWHERE points=<n> files=<compared> differ=0 duplicated=0`
(it stops with an AssertionError naming the files when the resumed run differs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kill_harness import kill_anywhere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=8, help="verifiable prompts per iteration")
    parser.add_argument("--timeout-hours", type=float, default=4.0, help="per run of the loop")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    settings = [
        "iterations=2",
        f"verifiable.num_prompts={args.prompts}",
        "sample.sampling.batch_size=4",  # several chunks per stage: kills land between them
        "sample.sampling.max_new_tokens=96",
        "model.backend=transformers",
        "dpo.checkpoint_minutes=0.05",  # a mid-training checkpoint every 3 s
        "eval.num_prompts=4",
        "eval.ifeval_final_prompts=8",
        "eval.ifeval_sampling.max_new_tokens=96",
    ]
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        target = lambda runs: ["cli", "run", recipe, *settings, f"runs_dir={runs}"]
        started = time.perf_counter()
        result = kill_anywhere(
            target(work / "clean"),
            target(work / "faulty"),
            work / "clean" / "quickstart",
            work / "faulty" / "quickstart",
            work / "work",
            points=args.points,
            seed=args.seed,
            timeout=args.timeout_hours * 3600,
        )
        print(
            f"compared {len(result['files'])} files; uninterrupted run {result['clean_seconds']:.0f}s, "
            f"everything {time.perf_counter() - started:.0f}s"
        )


if __name__ == "__main__":
    main()
