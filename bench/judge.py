"""Single-pass judging against generate-then-parse judging, on the same items and engine.

    python bench/judge.py [--items 64] [--engine transformers|llamacpp] [--outtype f16] [--fewshot 5,1]
                          [--pairwise]

Items: the bundled EFT seed's (question, answer) pairs, whose written judgements carry a score.
Both judges read the same rubric prompt (prompts/judge_rubric.txt) from the bundled model, after
the EFT judgements with the --fewshot scores as earlier turns (as recipes/self_reward_small.yaml
shows SmolLM2, which was not trained to judge; those examples are not among the items):
- generative: the judge writes its justification and `Score: N` (greedy, up to 192 tokens, as the
  recipes' judge does), the score being the expected score at its verdict token (use_logprobs);
- single_pass: the answer is started with `Score:` and the score is the expected value of the one
  next token over 0..5 (judge.single_pass).
Prints each judge's verdicts/s, parse rate and Spearman correlation with the seed's scores, then
the two judges' agreement (Spearman over the items both scored). The last line is
`RATIO single_pass_vs_generative=<verdicts/s ratio> spearman=<agreement>`.

--pairwise compares instead: each item's answer against the answer to the next item's question
(off topic, so the first should win), both orders, after the two worked comparisons
(judge.pairwise_fewshot). Generative: the judge writes its reasoning and `Winner: A|B`;
single-pass: the reply is started with `Winner:`. Prints each judge's comparisons/s, how often it
picks the on-topic answer, and the agreement: the share of identical winners and the Spearman
correlation of p_first (the probability that the first answer is better).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr

from autoalign.config import ModelConfig
from autoalign.data import load_eft
from autoalign.generation.base import SamplingParams
from autoalign.judges import JudgeItem
from autoalign.judges.pairwise import PairwiseItem, PairwiseJudge, demonstration_turns
from autoalign.judges.rubric import RubricJudge, judge_demonstrations, judge_prompt
from autoalign.models import resolve_model
from autoalign.runtime.pool import ModelPool, ModelRef

GENERATIVE = SamplingParams(temperature=0.0, max_new_tokens=192)
GENERATIVE_PAIRWISE = SamplingParams(temperature=0.0, max_new_tokens=192, top_logprobs=5)  # as PairwiseJudgeFactory


def correlation(xs: list[float | None], ys: list[float | None]) -> tuple[float, int]:
    """Spearman's rho over the positions where both are scored, and how many those are."""
    both = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(both) < 3:
        return float("nan"), len(both)
    rho = spearmanr([x for x, _ in both], [y for _, y in both]).statistic
    return float(rho), len(both)


def run_judge(judge: RubricJudge, items: list[JudgeItem]) -> tuple[list[float | None], float, float]:
    """(scores, seconds, generated tokens per verdict)."""
    before = judge.generator.usage.snapshot()["completion_tokens"]
    start = time.perf_counter()
    verdicts = judge.judge(items)
    seconds = time.perf_counter() - start
    tokens = judge.generator.usage.snapshot()["completion_tokens"] - before
    return [v.score for v in verdicts], seconds, tokens / len(items)


def run_pairwise(generator, items: list[JudgeItem]) -> tuple[dict[str, float], dict[str, list]]:
    """Each item's answer (first) against the next item's (second), generative and single-pass.
    Returns (comparisons/s, the preferences) per mode."""
    pairs = [
        PairwiseItem(item.prompt, item.response, items[(i + 1) % len(items)].response) for i, item in enumerate(items)
    ]
    demos = demonstration_turns()
    judges = {
        "generative": PairwiseJudge(generator, GENERATIVE_PAIRWISE, demonstrations=demos),
        "single_pass": PairwiseJudge(generator, GENERATIVE_PAIRWISE, demonstrations=demos, single_pass=True),
    }
    rates, preferences = {}, {}
    for name, judge in judges.items():
        before = judge.generator.usage.snapshot()["completion_tokens"]
        start = time.perf_counter()
        preferences[name] = judge.compare(pairs)
        seconds = time.perf_counter() - start
        tokens = (judge.generator.usage.snapshot()["completion_tokens"] - before) / (2 * len(pairs))
        rates[name] = len(pairs) / seconds
        decided = [p for p in preferences[name] if p.winner is not None]
        on_topic = sum(p.winner == "first" for p in decided)
        ties = sum(p.winner == "tie" for p in decided)
        print(
            f"JUDGE mode={name} comparisons_per_s={rates[name]:.2f} seconds={seconds:.1f} "
            f"tokens_per_order={tokens:.0f} parsed={len(decided)}/{len(pairs)} on_topic_wins={on_topic} ties={ties}"
        )
    return rates, preferences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--engine", default="transformers", choices=["transformers", "llamacpp"])
    parser.add_argument("--batch-size", type=int, default=16, help="rows per forward pass (transformers)")
    parser.add_argument("--parallel", type=int, default=8, help="server slots (llamacpp)")
    parser.add_argument(
        "--outtype", default="auto", choices=["auto", "f32", "f16", "bf16", "q8_0"], help="GGUF weights (llamacpp)"
    )
    parser.add_argument("--fewshot", default="5,1", help="EFT judgement scores shown first ('' for none)")
    parser.add_argument("--pairwise", action="store_true", help="pairwise comparisons instead of rubric scores")
    args = parser.parse_args()

    examples = load_eft("builtin:seed_eft.jsonl")
    scores_shown = [int(s) for s in args.fewshot.split(",") if s]
    demos = judge_demonstrations(examples, scores_shown)
    shown = {m["content"] for m in demos if m["role"] == "user"}
    items = [JudgeItem([{"role": "user", "content": e.instruction}], e.response) for e in examples]
    kept = [i for i, item in enumerate(items) if judge_prompt(item, 2000) not in shown][: args.items]
    items = [items[i] for i in kept]
    gold = [float(examples[i].score) for i in kept]
    ref = ModelRef("M", resolve_model(args.model), f"bench-{args.model}")
    print(f"model {args.model}, {len(items)} EFT seed items, {len(demos) // 2} shown first, engine {args.engine}")

    with tempfile.TemporaryDirectory() as tmp:
        engine = {"parallel": args.parallel, "outtype": args.outtype}
        cfg = ModelConfig(name=args.model, backend=args.engine, llamacpp=engine)
        pool = ModelPool(cfg, generation_batch_size=args.batch_size, engine_dir=Path(tmp))
        generator = pool.generator(ref)
        generator.generate([items[0].prompt], SamplingParams(max_new_tokens=4))  # load / start + warm-up
        if args.pairwise:
            rates, preferences = run_pairwise(generator, items)
            pool.close()
            report_pairwise(rates, preferences)
            return
        judges = {
            "generative": RubricJudge(generator, GENERATIVE, demonstrations=demos, use_logprobs=True),
            "single_pass": RubricJudge(generator, GENERATIVE, demonstrations=demos, single_pass=True),
        }
        scores, rates = {}, {}
        for name, judge in judges.items():
            scores[name], seconds, tokens = run_judge(judge, items)
            rates[name] = len(items) / seconds
            parsed = sum(s is not None for s in scores[name])
            rho, count = correlation(scores[name], gold)
            print(
                f"JUDGE mode={name} verdicts_per_s={rates[name]:.2f} seconds={seconds:.1f} tokens_per_verdict={tokens:.0f} "
                f"parsed={parsed}/{len(items)} spearman_vs_seed_scores={rho:.3f} (n={count})"
            )
        pool.close()
    agreement, count = correlation(scores["single_pass"], scores["generative"])
    print(f"agreement: Spearman {agreement:.3f} over the {count} items both judges scored")
    print(f"RATIO single_pass_vs_generative={rates['single_pass'] / rates['generative']:.1f} spearman={agreement:.2f}")


def report_pairwise(rates: dict[str, float], preferences: dict[str, list]) -> None:
    both = [(g, s) for g, s in zip(preferences["generative"], preferences["single_pass"]) if g.winner and s.winner]
    same = sum(g.winner == s.winner for g, s in both)
    rho, count = correlation([g.p_first for g, _ in both], [s.p_first for _, s in both])
    print(
        f"agreement: the same winner in {same}/{len(both)} comparisons both judges decided; p_first Spearman {rho:.3f}"
    )
    print(f"RATIO single_pass_vs_generative={rates['single_pass'] / rates['generative']:.1f} spearman={rho:.2f}")


if __name__ == "__main__":
    main()
