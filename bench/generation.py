"""Generation throughput on the bundled model: autoalign's engines against llama.cpp single stream.

    python bench/generation.py [--prompts 16] [--n 4] [--max-new-tokens 128] [--parallel 16]

The same held-out prompts, n samples each at T 0.8 / top-p 0.95, through
- transformers: the in-process decode loop (batch --batch-size);
- llamacpp: the managed llama-server (generation/engines: the checkpoint exported to GGUF,
  --parallel slots, continuous batching), as a run uses it;
- llamacpp_single: llama-cpp-python on the same GGUF, one stream (the anchor).
Then rubric judging (long prompts, one greedy verdict each) on the fastest engine. The last line
is `RATIO sampling_vs_llamacpp_single=<fastest engine's tokens/s / single stream's>`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from autoalign.config import ModelConfig
from autoalign.data import load_prompts
from autoalign.engines.llamacpp import exported_gguf
from autoalign.generation.base import SamplingParams, request_seed
from autoalign.judges import JudgeItem
from autoalign.judges.rubric import judge_prompt
from autoalign.models import resolve_model
from autoalign.runtime.pool import ModelPool, ModelRef


def timed(generator, requests, params) -> tuple[float, int, list]:
    start = time.perf_counter()
    outputs = generator.generate(requests, params)
    seconds = time.perf_counter() - start
    return seconds, sum(c.num_tokens for cands in outputs for c in cands), outputs


def single_stream(gguf: Path, requests, params: SamplingParams, threads: int) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, verbose=False)
    llm.create_chat_completion(requests[0], max_tokens=4)  # warm-up
    start, tokens = time.perf_counter(), 0
    for messages in requests:
        for i in range(params.n):
            reply = llm.create_chat_completion(
                messages,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                seed=request_seed(params.seed, messages, i),
            )
            tokens += reply["usage"]["completion_tokens"]
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass (transformers)")
    parser.add_argument("--parallel", type=int, default=16, help="server slots (llamacpp)")
    parser.add_argument("--outtype", default="auto", choices=["auto", "f32", "f16", "bf16", "q8_0"])
    parser.add_argument("--engines", default="transformers,llamacpp,llamacpp_single")
    args = parser.parse_args()
    engines = args.engines.split(",")
    threads = os.cpu_count() or 1

    path = resolve_model(args.model)
    ref = ModelRef("M", path, f"bench-{args.model}")
    prompts = load_prompts("builtin:heldout_prompts.jsonl")[: args.prompts]
    requests = [p.messages for p in prompts]
    sample = SamplingParams(n=args.n, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens)
    print(f"model {args.model}, {len(requests)} prompts x {args.n}, {args.max_new_tokens} tokens, {threads} threads")

    rates: dict[str, float] = {}
    generators = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine_cfg = ModelConfig(
            name=args.model, backend="llamacpp", llamacpp={"parallel": args.parallel, "outtype": args.outtype}
        )
        pools = {
            "transformers": ModelPool(ModelConfig(name=args.model), generation_batch_size=args.batch_size),
            "llamacpp": ModelPool(engine_cfg, engine_dir=Path(tmp)),
        }
        for name in [e for e in engines if e in pools]:
            start = time.perf_counter()
            generator = pools[name].generator(ref)
            generator.generate([requests[0]], SamplingParams(max_new_tokens=4))  # load / start + warm-up
            ready = time.perf_counter() - start
            seconds, tokens, outputs = timed(generator, requests, sample)
            rates[name] = tokens / seconds
            generators[name] = (generator, outputs)
            print(
                f"TOKS engine={name} tok_per_s={rates[name]:.1f} tokens={tokens} seconds={seconds:.1f} "
                f"ready_seconds={ready:.1f}"
            )
        if "llamacpp_single" in engines:
            gguf = exported_gguf(Path(tmp), ref, engine_cfg)
            seconds, tokens = single_stream(gguf, requests, sample, threads)
            rates["llamacpp_single"] = tokens / seconds
            print(
                f"TOKS engine=llamacpp_single tok_per_s={rates['llamacpp_single']:.1f} tokens={tokens} "
                f"seconds={seconds:.1f} (llama-cpp-python, {gguf.name})"
            )

        fastest = max((e for e in rates if e in generators), key=rates.get)
        generator, outputs = generators[fastest]
        judge_requests = [
            [{"role": "user", "content": judge_prompt(JudgeItem(p.messages, cands[0].text), 2000)}]
            for p, cands in zip(prompts, outputs)
        ]
        seconds, tokens, _ = timed(generator, judge_requests, SamplingParams(temperature=0.0, max_new_tokens=96))
        print(
            f"JUDGE engine={fastest} verdicts_per_s={len(judge_requests) / seconds:.2f} tok_per_s={tokens / seconds:.1f}"
        )
        for pool in pools.values():
            pool.close()
    if "llamacpp_single" in rates:
        print(f"RATIO sampling_vs_llamacpp_single={rates[fastest] / rates['llamacpp_single']:.2f}")


if __name__ == "__main__":
    main()
