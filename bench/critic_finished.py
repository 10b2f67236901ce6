"""The reward-model critic where length cannot decide: trained and measured only on pairs whose
two answers both finished (neither hit the token limit), from a finished routed-critic run.

    python bench/critic_finished.py runs/oversight_rm [--iteration 1] [--epochs 2] [--train-pairs 192]

In a run of recipes/oversight.yaml most of the critic's calibration accuracy comes from
truncation: a cut-off answer fails the checkers and the reward model learns to spot it. This
script reads the run's verifiable prompts, answers and checker scores, trains a fresh reward
model on the both-finished pairs of prompts outside the run's calibration slice, and scores the
both-finished pairs of the slice's prompts. Prints one line:
`CRITIC_FINISHED train=<n> test=<n> accuracy=<x> shorter_is_better=<x> error_at_half=<x>
point_coverage=<x> upper_coverage=<x>` (coverage within 15% error, by the point value and by
the exact upper bound).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoalign.config import TrainConfig
from autoalign.judges.critic import margin_uncertainty
from autoalign.judges.routing import calibrate
from autoalign.models import resolve_model
from autoalign.stages.critic import LabelledPair, ranked_slice
from autoalign.train.reward_model import Comparison, load_reward_model, reward_margins, train_reward_model
from autoalign.types import RankedGroup


def read_rows(stage: Path) -> list[dict]:
    return [json.loads(line) for line in (stage / "data.jsonl").open()]


def finished_groups(groups: list[int], prompts, answers, scores) -> list[RankedGroup]:
    """Each prompt's answers that finished (neither hit the token limit), ranked by the checkers."""
    out = []
    for g in groups:
        key = prompts[g]["id"]
        done = [i for i, c in enumerate(answers[key]) if c["finish_reason"] == "stop"]
        texts, gold = [answers[key][i]["text"] for i in done], [scores[key][i]["score"] for i in done]
        out.append(RankedGroup(prompts[g]["prompt"], texts, gold))
    return out


def comparisons(pairs: list[LabelledPair]) -> list[Comparison]:
    return [Comparison(p.item.prompt, p.item.first, p.item.second, float(p.truth == "first")) for p in pairs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--iteration", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-pairs", type=int, default=192)
    parser.add_argument("--target-error", type=float, default=0.15)
    args = parser.parse_args()
    it = args.run / f"iter_{args.iteration}"
    prompts = read_rows(it / "verifiable_prompts")
    answers = {r["id"]: r["candidates"] for r in read_rows(it / "verifiable_candidates")}
    scores = {r["id"]: r["critiques"] for r in read_rows(it / "critiques")}
    in_slice = {int(r["id"][3:].split("_")[0]) for r in read_rows(it / "critic_calibration")}  # ids cal<g>_<i>_<j>
    others = finished_groups([g for g in range(len(prompts)) if g not in in_slice], prompts, answers, scores)
    train = comparisons(ranked_slice(others, args.train_pairs, seed=0))
    test_groups = finished_groups(sorted(in_slice), prompts, answers, scores)
    every_pair = sum(len(g.responses) ** 2 for g in test_groups)
    test = comparisons(ranked_slice(test_groups, every_pair, seed=1))
    cfg = TrainConfig(
        learning_rate=2e-5, epochs=args.epochs, batch_size=4, grad_accum=2, max_length=384, warmup_ratio=0.1
    )
    model, tokenizer = load_reward_model(resolve_model("smollm2-135m-instruct"), seed=0)
    model, _ = train_reward_model(model, tokenizer, train, cfg, seed=0)
    margins = reward_margins(model, tokenizer, test, cfg)
    correct = [(m > 0) == (c.target > 0.5) for m, c in zip(margins, test)]
    uncertain = [margin_uncertainty(m) for m in margins]
    half = sorted(range(len(test)), key=lambda i: uncertain[i])[: round(len(test) / 2)]
    shorter = sum((len(c.first) < len(c.second)) == (c.target > 0.5) for c in test) / len(test)
    point, upper = (calibrate(uncertain, correct, args.target_error, bound) for bound in ("point", "upper"))
    print(
        f"CRITIC_FINISHED train={len(train)} test={len(test)} accuracy={sum(correct) / len(test):.3f} "
        f"shorter_is_better={shorter:.3f} error_at_half={sum(not correct[i] for i in half) / len(half):.3f} "
        f"point_coverage={point.coverage:.3f} upper_coverage={upper.coverage:.3f}"
    )


if __name__ == "__main__":
    main()
