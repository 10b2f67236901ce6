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
import random
from pathlib import Path

from autoalign.config import TrainConfig
from autoalign.judges.critic import margin_uncertainty
from autoalign.judges.routing import calibrate
from autoalign.models import resolve_model
from autoalign.train.reward_model import Comparison, load_reward_model, reward_margins, train_reward_model


def read_rows(stage: Path) -> list[dict]:
    return [json.loads(line) for line in (stage / "data.jsonl").open()]


def finished_pairs(groups: list[int], prompts, answers, scores, rng: random.Random) -> list[Comparison]:
    """Every pair of differently scored answers that both finished, the better one first or second at random."""
    out = []
    for g in groups:
        key = prompts[g]["id"]
        done = [i for i, c in enumerate(answers[key]) if c["finish_reason"] == "stop"]
        for a, i in enumerate(done):
            for j in done[a + 1 :]:
                if scores[key][i]["score"] == scores[key][j]["score"]:
                    continue
                better, worse = (i, j) if scores[key][i]["score"] > scores[key][j]["score"] else (j, i)
                swap = rng.random() < 0.5
                first, second = (worse, better) if swap else (better, worse)
                prompt = [{"role": "user", "content": prompts[g]["prompt"]}]
                texts = answers[key][first]["text"], answers[key][second]["text"]
                out.append(Comparison(prompt, *texts, 0.0 if swap else 1.0))
    return out


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
    rng = random.Random(0)
    train = finished_pairs([g for g in range(len(prompts)) if g not in in_slice], prompts, answers, scores, rng)
    rng.shuffle(train)
    train = train[: args.train_pairs]
    test = finished_pairs(sorted(in_slice), prompts, answers, scores, rng)
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
