"""Best-of-N with the IFEval verifier as the scorer, on IFEval prompts: how prompt-level strict
accuracy grows with N, and what it costs.

    python bench/best_of_n.py [--model smollm2-135m-instruct] [--prompts 100] [--samples 16]

Each prompt gets --samples answers once (temperature 0.8, top-p 0.95, 256 tokens, the model's
fastest engine); the verifier scores every answer by the share of its instructions followed
(loose), and for each N the exact expected strict accuracy of best-of-N over every N-subset of
those answers (inference/best_of_n.py: expected_best_of_n) is paired by prompt against N = 1,
with a bootstrap interval. The greedy answer (what the evaluation suite scores) is the reference
line. IFEval is used here as a test-time oracle, never to train: this measures how much a
verifier can pick out of the model's own samples, not a model that got better.

Prints one line per N:
    BEST_OF_N n=<N> strict=<%> difference=<points vs N=1> ci_low=<> ci_high=<> tokens=<per prompt> seconds=<per prompt>
"""

from __future__ import annotations

import argparse
import time

from autoalign.config import ModelConfig
from autoalign.engines.llamacpp import check_engine, settle_auto_backend
from autoalign.eval.paired import paired_mean_difference
from autoalign.generation.base import SamplingParams
from autoalign.inference.best_of_n import expected_best_of_n
from autoalign.judges.base import JudgeItem
from autoalign.judges.verifier import VerifierJudgeFactory
from autoalign.models import resolve_model
from autoalign.runtime.pool import ModelPool, ModelRef
from autoalign.types import user_message
from autoalign.verifiers.ifeval import load_ifeval, score_response

IFEVAL = "builtin:ifeval_input_data.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=100, help="the first N IFEval prompts")
    parser.add_argument("--samples", type=int, default=16, help="answers drawn per prompt (the largest N)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    items = load_ifeval(IFEVAL)[: args.prompts]
    cfg = ModelConfig(name=args.model, backend=args.backend)
    path = resolve_model(args.model, log=print)
    settle_auto_backend(cfg, path)
    if cfg.backend == "llamacpp":
        check_engine(cfg, path)
    pool = ModelPool(cfg)
    try:
        generator = pool.generator(ModelRef("model", path, args.model), 32)
        requests = [user_message(item.prompt) for item in items]
        greedy = generator.generate(requests, SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens))
        start = time.perf_counter()
        params = SamplingParams(
            n=args.samples, temperature=args.temperature, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0
        )
        groups = generator.generate(requests, params)
        seconds = time.perf_counter() - start
    finally:
        pool.close()
    verifier = VerifierJudgeFactory(IFEVAL)(None, None, 0)
    greedy_strict = [all(score_response(i, g[0].text).strict) for i, g in zip(items, greedy)]
    print(f"greedy (temperature 0): prompt strict {100 * sum(greedy_strict) / len(items):.1f}%")
    values, scores = [], []
    for item, request, group in zip(items, requests, groups):
        values.append([float(all(score_response(item, c.text).strict)) for c in group])
        scores.append([v.score for v in verifier.judge([JudgeItem(request, c.text) for c in group])])
    tokens = sum(c.num_tokens for g in groups for c in g) / (len(items) * args.samples)
    single = [expected_best_of_n(v, s, 1) for v, s in zip(values, scores)]
    n = 1
    while n <= args.samples:
        picked = [expected_best_of_n(v, s, n) for v, s in zip(values, scores)]
        d = paired_mean_difference(single, picked)
        print(
            f"BEST_OF_N n={n} strict={d['model']:.1f} difference={d['difference']:+.1f} "
            f"ci_low={d['ci_low']:+.1f} ci_high={d['ci_high']:+.1f} tokens={n * tokens:.0f} "
            f"seconds={n * seconds / (len(items) * args.samples):.2f}",
            flush=True,
        )
        n *= 2


if __name__ == "__main__":
    main()
