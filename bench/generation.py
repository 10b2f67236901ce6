"""Generation throughput of the in-process backend on the bundled model.

    python bench/generation.py [--model smollm2-135m-instruct] [--batch-size 8] [--n 4]

Prints tokens/s for answer sampling (n candidates per prompt, shared prefill) and for rubric
judging (long prompts, one greedy verdict each), the two costs that dominate a loop.
"""

from __future__ import annotations

import argparse
import time

import torch

from autoalign.data import load_prompts
from autoalign.generation.base import SamplingParams
from autoalign.generation.hf import HFGenerator
from autoalign.judges import JudgeItem
from autoalign.judges.rubric import judge_prompt
from autoalign.models import resolve_model
from autoalign.models.loading import load_model


def timed(gen: HFGenerator, requests, params) -> tuple[float, int, float]:
    start = time.perf_counter()
    outputs = gen.generate(requests, params)
    seconds = time.perf_counter() - start
    tokens = sum(c.num_tokens for cands in outputs for c in cands)
    return (
        seconds,
        tokens,
        sum(c.finish_reason == "length" for cands in outputs for c in cands) / sum(len(c) for c in outputs),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    loaded = load_model(resolve_model(args.model), dtype=args.dtype)
    print(f"model {args.model} ({args.dtype}), torch threads {torch.get_num_threads()}")
    prompts = load_prompts("builtin:heldout_prompts.jsonl")[: args.prompts]
    gen = HFGenerator(loaded, batch_size=args.batch_size)
    gen.generate([prompts[0].messages], SamplingParams(n=1, max_new_tokens=4))  # warm-up

    sample = SamplingParams(n=args.n, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens)
    seconds, tokens, truncated = timed(gen, [p.messages for p in prompts], sample)
    print(
        f"sampling: {len(prompts)} prompts x {args.n}, batch {args.batch_size}: {tokens} tokens in {seconds:.1f}s "
        f"= {tokens / seconds:.1f} tokens/s ({truncated:.0%} hit max tokens)"
    )
    answers = gen.generate(
        [p.messages for p in prompts], SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    )

    judge_requests = [
        [{"role": "user", "content": judge_prompt(JudgeItem(p.messages, a[0].text), 2000)}]
        for p, a in zip(prompts, answers)
    ]
    prompt_tokens = sum(
        len(
            loaded.tokenizer(
                loaded.tokenizer.apply_chat_template(r, tokenize=False), add_special_tokens=False
            ).input_ids
        )
        for r in judge_requests
    )
    judge_gen = HFGenerator(loaded, batch_size=args.batch_size * 2)
    seconds, tokens, truncated = timed(
        judge_gen, judge_requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    )
    print(
        f"judging: {len(judge_requests)} verdicts (mean prompt {prompt_tokens / len(judge_requests):.0f} tokens), batch {args.batch_size * 2}: "
        f"{tokens} tokens in {seconds:.1f}s = {tokens / seconds:.1f} tokens/s, {len(judge_requests) / seconds:.2f} verdicts/s "
        f"({truncated:.0%} hit max tokens)"
    )


if __name__ == "__main__":
    main()
