"""DPO training throughput on the bundled model.

    python bench/dpo.py [--pairs 16] [--batch-size 2] [--lora] [--autocast bf16]

Pairs come from the bundled IFT seed: chosen = the seed answer, rejected = the answer to another
seed prompt. Prints the reference log-prob pass and the training pass separately (pairs/s),
the mean tokens per sequence, and the process's peak memory. With --autocast bf16 both passes run
under CPU bf16 autocast (fp32 weights), and the reference log-probs are compared with fp32 ones:
how far bf16 moves a sequence's log-prob, per token.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from autoalign.config import DPOConfig, LoraConfig
from autoalign.data import load_ift
from autoalign.models import resolve_model
from autoalign.models.loading import load_model
from autoalign.train.data import encode_pair
from autoalign.train.dpo import forward_logprobs, reference_logprobs
from autoalign.train.loop import optimise, precision
from autoalign.train import lora
from autoalign.train.losses import IGNORE_INDEX, dpo_sigmoid_loss
from autoalign.types import Pair


def answer_length(example) -> int:
    """The tokens a sequence log-prob sums over (the answer's; prompt positions are ignored)."""
    return sum(label != IGNORE_INDEX for label in example.labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--autocast", choices=["bf16"], help="run both passes under CPU bf16 autocast")
    args = parser.parse_args()

    conversations = load_ift("builtin:seed_ift.jsonl")[: args.pairs + 1]
    pairs = [
        Pair(f"p{i}", conv[:-1], conv[-1]["content"], conversations[i + 1][-1]["content"])
        for i, conv in enumerate(conversations[:-1])
    ]
    cfg = DPOConfig(
        batch_size=args.batch_size,
        grad_accum=1,
        epochs=1,
        learning_rate=1e-5,
        lora=LoraConfig(enabled=args.lora),
        autocast=args.autocast or "off",
    )
    loaded = load_model(resolve_model(args.model))
    encoded = [encode_pair(loaded.tokenizer, p, cfg.max_length) for p in pairs]
    mean_tokens = sum(len(c.input_ids) + len(r.input_ids) for c, r in encoded) / (2 * len(encoded))
    model = lora.wrap(loaded.model, cfg.lora)
    pad = loaded.tokenizer.pad_token_id

    start = time.perf_counter()
    with precision(cfg, model):  # the trainer's own context; optimise() applies it to each training step
        reference = reference_logprobs(model, encoded, pad, cfg.batch_size)
    ref_seconds = time.perf_counter() - start
    if args.autocast:
        exact = reference_logprobs(model, encoded, pad, cfg.batch_size)
        answer_tokens = torch.tensor([[answer_length(c), answer_length(r)] for c, r in encoded], dtype=torch.float)
        per_token = ((reference.float() - exact).abs() / answer_tokens).mean().item()
        print(f"bf16 vs fp32 reference log-probs: mean |difference| {per_token:.4f} nats per answer token")

    def step(indices):
        policy = forward_logprobs(model, [e for i in indices for e in encoded[i]], pad).view(-1, 2)
        return dpo_sigmoid_loss(policy[:, 0], policy[:, 1], reference[indices, 0], reference[indices, 1], cfg.beta)

    start = time.perf_counter()
    history = optimise(model, len(encoded), step, cfg, seed=0, desc="DPO")
    train_seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"model {args.model} ({'LoRA' if args.lora else 'full'}, {args.autocast or 'fp32'}), {len(pairs)} pairs, "
        f"mean {mean_tokens:.0f} tokens/sequence, batch {args.batch_size}"
    )
    print(
        f"reference log-probs: {len(pairs) / ref_seconds:.2f} pairs/s ({ref_seconds:.1f}s, computed once per iteration)"
    )
    print(
        f"training: {len(pairs) / train_seconds:.2f} pairs/s ({train_seconds:.1f}s, {len(history)} steps, final loss {history[-1]['loss']:.4f})"
    )
    print(f"peak memory: {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
