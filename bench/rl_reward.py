"""The training reward of an online-RL run (or an iterative DPO run) on one fixed set of prompts:
every round's model (M1, M2, ...) answers the same fresh verifiable prompts the way training
samples (the run's sample settings), the run's critic scores each answer in [0, 1], and each
model's mean reward is compared with M1's, paired by prompt, with a bootstrap interval.

    python bench/rl_reward.py runs/rl_verifiable [runs/other ...] [--prompts 48] [--seed 7] [--rounds all|last]

With several runs (say GRPO and iterative DPO from the same M1), M1 is measured once and every
run's models are labelled `<run>:M<k>`, all on the same probe, which avoids every run's prompts.

The rounds of a run draw new prompts (and, with the attacker, harder constraint types), so their
own mean rewards are not comparable; this is. The probe prompts are synthesised like training
prompts (uniform constraint draws, no held-out type) and kept away from the run's training
prompts and from every IFEval prompt. Prints one line per model:
`RL_REWARD model=<label> mean=<x> all_met=<x> truncated=<x> difference=<points> ci_low=<points> ci_high=<points>`
(difference: mean reward minus M1's, x 100, on the same prompts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoalign.config import load_config
from autoalign.eval.paired import paired_mean_difference
from autoalign.generation.base import sampling_params
from autoalign.loops.context import build_context
from autoalign.loops.verified import base_tasks
from autoalign.runtime.pool import ModelRef
from autoalign.stages.verifiable import critique
from autoalign.store import content_key
from autoalign.synth.constraints import SAMPLERS
from autoalign.synth.verifiable import EvaluationFilter, synthesize
from autoalign.types import user_message
from autoalign.verdicts import MAX_SCORE
from autoalign.verifiers.ifeval import load_ifeval


def training_prompts(runs: list[Path]) -> list[str]:
    files = [f for run in runs for f in run.glob("iter_*/verifiable_prompts/data.jsonl")]
    return [json.loads(line)["prompt"] for f in files for line in f.open()]


def trained_models(run: Path, last_only: bool, label_prefix: str) -> list[ModelRef]:
    trained = [p for p in run.glob("iter_*/*/model") if p.parent.name in ("rl", "dpo")]  # an RL or a DPO run
    rounds = sorted(trained, key=lambda p: int(p.parent.parent.name[5:]))
    refs = [
        ModelRef(f"{label_prefix}M{i + 2}", p, content_key("probe", str(p.resolve()))) for i, p in enumerate(rounds)
    ]
    return refs[-1:] if last_only else refs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=Path, nargs="+", help="run directories; the first one's recipe sets the probe")
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", choices=["all", "last"], default="all", help="every round's model, or the last")
    args = parser.parse_args()
    cfg = load_config(args.runs[0] / "config.yaml", [])
    ctx, m1 = build_context(cfg, log=lambda m: None)
    avoid = training_prompts(args.runs) + [i.prompt for i in load_ifeval("builtin:ifeval_input_data.jsonl")]
    allowed = sorted(set(SAMPLERS) - set(cfg.verifiable.held_out))
    made = synthesize(
        base_tasks(ctx), args.prompts, 10_000 + args.seed, EvaluationFilter(avoid), allowed,
        cfg.verifiable.max_constraints, "probe",
    )  # fmt: skip
    items, tasks = made.rows, made.tasks
    models = [ModelRef("M1", m1.path, m1.key)]
    for run in args.runs:
        models += trained_models(run, args.rounds == "last", f"{run.name}:" if len(args.runs) > 1 else "")
    params = sampling_params(cfg.sample.sampling, n=cfg.sample.n, seed=args.seed)
    requests = [user_message(item.prompt) for item in items]
    per_model = {}
    try:
        for ref in models:
            answers = ctx.pool.generator(ref, cfg.sample.sampling.batch_size).generate(requests, params)
            scores, met, cut = [], 0, 0
            for item, task, group in zip(items, tasks, answers):
                crits = [
                    critique(item, c, cfg.verifiable.strict, task if cfg.verifiable.off_task_check else None)
                    for c in group
                ]
                scores.append(sum(c.score for c in crits) / (MAX_SCORE * len(crits)))
                met += sum(c.score == MAX_SCORE for c in crits)
                cut += sum(c.finish_reason == "length" for c in group)
            per_model[ref.label] = scores
            compared = paired_mean_difference(per_model["M1"], scores)
            total = len(items) * cfg.sample.n
            interval = " ".join(f"{k}={compared[k]:+.1f}" for k in ("difference", "ci_low", "ci_high"))
            print(
                f"RL_REWARD model={ref.label} mean={sum(scores) / len(scores):.3f} all_met={met / total:.3f} "
                f"truncated={cut / total:.3f} {interval}",
                flush=True,
            )
            ctx.pool.release()
    finally:
        ctx.pool.close()


if __name__ == "__main__":
    main()
