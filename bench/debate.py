"""Does a debate help the judge? Judge accuracy on verifier-labelled pairs, with and without a
debate transcript, paired by pair.

    python bench/debate.py [--model smollm2-135m-instruct] [--prompts 160] [--rounds 1] [--single-pass]

Pairs with known truth: fresh verifiable prompts (synthesised like the verifiable loop's, kept
away from IFEval's), 4 answers each from the model; where the programmatic critic gives one
answer a full score and another at most half, the two form a pair whose better answer is known
(shown first or second by a seeded coin). The same model then judges each pair twice, with the
same judge prompt (prompts/debate_judge.txt): once with no debate, once after `--rounds` rounds
of the two debaters (inference/debate.py). A verdict counts as right only when both orders
agree on the better answer (a tie or an unparsed verdict is not right). With --single-pass the
judge's reply is started with `Winner:` and read from the next token's probabilities, so every
verdict parses (judges/pairwise.py).

Prints:
    DEBATE pairs=<n> without=<% right> with=<% right> difference=<points> ci_low=<> ci_high=<> ...
and with --single-pass also DEBATE_AVERAGED (same fields): right when the position-averaged
probability that the first answer wins (Preference.p_first) sides with the truth; chance = 50%.
"""

from __future__ import annotations

import argparse
import random
import time

from autoalign.cli_common import load_pool
from autoalign.eval.paired import paired_difference
from autoalign.generation.base import SamplingParams
from autoalign.inference.debate import debate, judged_without_debate
from autoalign.judges.pairwise import PairwiseItem
from autoalign.stages.verifiable import critique
from autoalign.synth.constraints import SAMPLERS
from autoalign.synth.verifiable import EvaluationFilter, bundled_tasks, synthesize
from autoalign.types import user_message
from autoalign.verdicts import MAX_SCORE
from autoalign.verifiers.ifeval import load_ifeval


def labelled_pairs(generator, prompts: int, seed: int) -> tuple[list[PairwiseItem], list[str]]:
    """(pairs, the better answer of each: "first" or "second")."""
    avoid = [i.prompt for i in load_ifeval("builtin:ifeval_input_data.jsonl")]
    made = synthesize(bundled_tasks(), prompts, 20_000 + seed, EvaluationFilter(avoid), sorted(SAMPLERS), 2, "debate")
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=160, seed=seed)
    groups = generator.generate([user_message(i.prompt) for i in made.rows], params)
    rng = random.Random(seed)
    items, truth = [], []
    for item, task, group in zip(made.rows, made.tasks, groups):
        scored = sorted(((critique(item, c, True, task).score, c.text) for c in group), reverse=True)
        (top, good), (low, bad) = scored[0], scored[-1]
        if top < MAX_SCORE or low > MAX_SCORE / 2 or good.strip() == bad.strip():
            continue
        first_is_good = rng.random() < 0.5
        first, second = (good, bad) if first_is_good else (bad, good)
        items.append(PairwiseItem(user_message(item.prompt), first, second))
        truth.append("first" if first_is_good else "second")
    return items, truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument(
        "--single-pass", action="store_true", help="verdicts from the probabilities after `Winner:` (all parse)"
    )
    args = parser.parse_args()
    pool, ref = load_pool(args.model, "float32", None, args.backend)
    try:
        generator = pool.generator(ref, 32)
        items, truth = labelled_pairs(generator, args.prompts, args.seed)
        print(f"{len(items)} verifier-labelled pairs from {args.prompts} prompts", flush=True)
        if not items:
            raise SystemExit("no answer met every constraint while another met at most half: more --prompts")
        judge_params = SamplingParams(temperature=0.0, max_new_tokens=128, seed=args.seed)
        debate_params = SamplingParams(temperature=0.7, top_p=0.95, max_new_tokens=128, seed=args.seed)
        start = time.perf_counter()
        plain = judged_without_debate(generator, items, judge_params, args.single_pass)
        plain_seconds = time.perf_counter() - start
        start = time.perf_counter()
        both = (generator, generator)
        debated = debate(both, generator, items, args.rounds, debate_params, judge_params, args.single_pass)
        debate_seconds = time.perf_counter() - start
    finally:
        pool.close()
    right_without = [p.winner == t for p, t in zip(plain, truth)]
    right_with = [d.preference.winner == t for d, t in zip(debated, truth)]
    d = paired_difference(right_without, right_with)
    decided = lambda prefs: sum(p.winner in ("first", "second") for p in prefs) / len(prefs)
    print(
        f"DEBATE pairs={len(items)} rounds={args.rounds} single_pass={int(args.single_pass)} without={d['baseline']:.1f} with={d['model']:.1f} "
        f"difference={d['difference']:+.1f} ci_low={d['ci_low']:+.1f} ci_high={d['ci_high']:+.1f} "
        f"sign_test_p={d['sign_test_p']:.3f} decided_without={100 * decided(plain):.1f} "
        f"decided_with={100 * decided([x.preference for x in debated]):.1f} "
        f"seconds_without={plain_seconds:.0f} seconds_with={debate_seconds:.0f} "
        f"tokens_with={sum(x.tokens for x in debated)}",
        flush=True,
    )
    if args.single_pass:
        # Position-averaged: the mean over both orders of P(first wins) decides, so a judge that says
        # "A" whatever it is shown still has a verdict (Wang et al. 2023, "Large Language Models are not
        # Fair Evaluators": balanced position calibration). Chance is 50%.
        averaged = lambda pref, t: pref.p_first is not None and (pref.p_first > 0.5) == (t == "first")
        a = paired_difference(
            [averaged(p, t) for p, t in zip(plain, truth)], [averaged(x.preference, t) for x, t in zip(debated, truth)]
        )
        print(
            f"DEBATE_AVERAGED pairs={len(items)} without={a['baseline']:.1f} with={a['model']:.1f} "
            f"difference={a['difference']:+.1f} ci_low={a['ci_low']:+.1f} ci_high={a['ci_high']:+.1f} "
            f"sign_test_p={a['sign_test_p']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
