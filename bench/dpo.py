"""DPO training throughput and memory on the bundled model, with TRL's DPOTrainer as the anchor.

    python bench/dpo.py [--pairs 64] [--pairs-file PAIRS.jsonl] [--batch-size 4] [--lora]
                        [--autocast bf16] [--activation-checkpointing 1] [--processes 2] [--trl]
                        [--optimizer adamw_8bit] [--release-freed-memory]

Pairs: a pairs file (`runs/<name>/iter_1/pairs/data.jsonl`, the first --pairs rows), or built
from the bundled IFT seed (chosen = the seed answer, rejected = the answer to another prompt).
autoalign's side prints the reference log-prob pass and the training pass separately (pairs/s),
the mean tokens per sequence and the process's peak memory. With --autocast bf16 both passes run
under CPU bf16 autocast (fp32 weights), and the reference log-probs are compared with fp32 ones.

With --trl (needs the `bench` extra: pip install -e .[bench]), each side runs in its own process
(so each peak RSS is its own) on the same pairs, batch, max length and precision, the sigmoid loss
at beta 0.1, one epoch, activation checkpointing on both sides or on neither (TRL's default is
on), reference log-probs included on both sides (autoalign computes them once
before training; TRL keeps a reference model and runs it at every step, its default). The last
line is `RATIO dpo_vs_trl=<autoalign pairs/s / TRL pairs/s> rss_gb=<autoalign's peak RSS>`.

--optimizer adamw_8bit (8-bit AdamW moments) and --release-freed-memory (glibc's free heap pages
returned before each backward) are autoalign's memory settings; TRL keeps its default optimizer.

--processes N trains autoalign's side data-parallel in N processes under `accelerate launch` (as
`accelerate launch -m autoalign run` does; the peak memory is then the main process's).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from autoalign.config import DPOConfig, LoraConfig
from autoalign.data import load_ift
from autoalign.engines.server import free_port
from autoalign.models import resolve_model
from autoalign.models.loading import load_model
from autoalign.train import distributed
from autoalign.train.data import encode_pair
from autoalign.train.dpo import reference_logprobs, train_dpo
from autoalign.train.loop import precision
from autoalign.train.losses import IGNORE_INDEX
from autoalign.types import Pair

BETA = 0.1
LEARNING_RATE = 1e-5


def answer_length(example) -> int:
    """The tokens a sequence log-prob sums over (the answer's; prompt positions are ignored)."""
    return sum(label != IGNORE_INDEX for label in example.labels)


def load_pairs(args: argparse.Namespace) -> list[Pair]:
    if args.pairs_file:
        lines = Path(args.pairs_file).read_text().splitlines()
        return [Pair.from_dict(json.loads(line)) for line in lines[: args.pairs]]
    conversations = load_ift("builtin:seed_ift.jsonl")[: args.pairs + 1]
    return [
        Pair(f"p{i}", conv[:-1], conv[-1]["content"], conversations[i + 1][-1]["content"])
        for i, conv in enumerate(conversations[:-1])
    ]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_autoalign(args: argparse.Namespace, pairs: list[Pair]) -> dict:
    """The trainer exactly as a run calls it (train_dpo: length-grouped batches, the reference
    pass in length order), timed by its own stats; with the other launched processes if any."""
    world = distributed.start()
    cfg = DPOConfig(
        batch_size=args.batch_size,
        grad_accum=1,
        epochs=1,
        learning_rate=LEARNING_RATE,
        beta=BETA,
        max_length=args.max_length,
        lora=LoraConfig(enabled=args.lora),
        autocast=args.autocast or "off",
        activation_checkpointing=args.activation_checkpointing,
        group_by_length=not args.no_grouping,
        freeze_embeddings=args.freeze_embeddings,
        optimizer=args.optimizer,
        release_freed_memory=args.release_freed_memory,
    )
    loaded = load_model(resolve_model(args.model), chat_template=args.chat_template)
    bf16_drift = None
    if args.autocast:  # two extra reference passes, outside the timed training
        encoded = [encode_pair(loaded.tokenizer, p, cfg.max_length) for p in pairs]
        pad = loaded.tokenizer.pad_token_id
        with precision(cfg, loaded.model):
            reduced = reference_logprobs(loaded.model, encoded, pad, cfg.batch_size)
        exact = reference_logprobs(loaded.model, encoded, pad, cfg.batch_size)
        answer_tokens = torch.tensor([[answer_length(c), answer_length(r)] for c, r in encoded], dtype=torch.float)
        bf16_drift = ((reduced - exact).abs() / answer_tokens).mean().item()
    with distributed.training_cores(world):
        _, history, stats = train_dpo(loaded, pairs, cfg, seed=0)
    seconds = stats["reference_seconds"] + stats["train_seconds"]
    return {
        "side": "autoalign",
        "mean_tokens": stats["mean_tokens"],
        "reference_seconds": stats["reference_seconds"],
        "train_seconds": stats["train_seconds"],
        "pairs_per_s": len(pairs) / seconds,
        "steps": len(history),
        "first_loss": history[0]["loss"],
        "final_loss": history[-1]["loss"],
        "bf16_drift": bf16_drift,
        "rss_gb": peak_rss_gb(),
        "processes": world.size,
    }


def run_trl(args: argparse.Namespace, pairs: list[Pair]) -> dict:
    from datasets import Dataset
    from peft import LoraConfig as PeftLoraConfig
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    loaded = load_model(resolve_model(args.model))
    rows = [{k: v for k, v in p.to_dict().items() if k in ("prompt", "chosen", "rejected")} for p in pairs]
    peft_config = None
    if args.lora:
        ours = LoraConfig(enabled=True)
        peft_config = PeftLoraConfig(
            r=ours.r, lora_alpha=ours.alpha, lora_dropout=ours.dropout, target_modules=ours.target_modules
        )
    with tempfile.TemporaryDirectory() as out:
        config = TRLConfig(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=1,
            num_train_epochs=1,
            learning_rate=LEARNING_RATE,
            max_length=args.max_length,
            beta=BETA,
            loss_type=["sigmoid"],
            bf16=args.autocast == "bf16",
            use_cpu=True,
            gradient_checkpointing=bool(args.activation_checkpointing),  # TRL's default is on
            gradient_checkpointing_kwargs={"use_reentrant": False},
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            dataloader_num_workers=0,
            seed=0,
        )
        trainer = DPOTrainer(
            model=loaded.model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=loaded.tokenizer,
            peft_config=peft_config,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return {
        "side": "trl",
        "train_seconds": seconds,
        "pairs_per_s": len(pairs) / seconds,
        "steps": trainer.state.global_step,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "rss_gb": peak_rss_gb(),
    }


def child(args: argparse.Namespace, side: str) -> dict:
    """One side in a fresh process (autoalign's in --processes under accelerate launch): its peak
    RSS is its own."""
    command = [sys.executable, __file__, "--side", side] + [a for a in sys.argv[1:] if a != "--trl"]
    if side == "autoalign" and args.processes > 1:
        launcher = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu"]
        launcher += ["--num_processes", str(args.processes), "--main_process_port", str(free_port())]
        command = [*launcher, *command[1:]]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"the {side} side failed ({done.returncode}): {' '.join(command)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(args: argparse.Namespace, pairs: list[Pair], ours: dict) -> None:
    mode = f"{'LoRA' if args.lora else 'full'}, {args.autocast or 'fp32'}"
    if args.activation_checkpointing:
        mode += f", activations checkpointed every {args.activation_checkpointing} layer(s)"
    if args.no_grouping:
        mode += ", random batches"
    if args.freeze_embeddings:
        mode += ", embeddings frozen"
    if args.optimizer != "adamw":
        mode += f", {args.optimizer}"
    if args.release_freed_memory:
        mode += ", freed memory released"
    print(
        f"model {args.model} ({mode}), {len(pairs)} pairs, mean {ours['mean_tokens']:.0f} tokens/sequence, "
        f"batch {args.batch_size}, max length {args.max_length}"
    )
    if ours["processes"] > 1:
        print(f"autoalign trains data-parallel in {ours['processes']} processes")
    if ours["bf16_drift"] is not None:
        print(f"bf16 vs fp32 reference log-probs: mean |difference| {ours['bf16_drift']:.4f} nats per answer token")
    ref, train = ours["reference_seconds"], ours["train_seconds"]
    print(f"reference log-probs: {len(pairs) / ref:.2f} pairs/s ({ref:.1f}s, computed once per iteration)")
    print(
        f"training: {len(pairs) / train:.2f} pairs/s ({train:.1f}s, {ours['steps']} steps, "
        f"loss {ours['first_loss']:.4f} -> {ours['final_loss']:.4f})"
    )
    print(f"autoalign: {ours['pairs_per_s']:.3f} pairs/s with the reference pass, peak memory {ours['rss_gb']:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--pairs-file", help="a pairs JSONL (prompt, chosen, rejected); default: seed-built pairs")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--autocast", choices=["bf16"], help="run both passes under CPU bf16 autocast")
    parser.add_argument(
        "--activation-checkpointing", type=int, default=0, metavar="N", help="recompute activations (both sides)"
    )
    parser.add_argument("--chat-template", default=None, help="for a base model without one (bundled: set)")
    parser.add_argument("--freeze-embeddings", action="store_true", help="autoalign's side: embeddings fixed")
    parser.add_argument("--optimizer", choices=["adamw", "adamw_8bit"], default="adamw", help="autoalign's side")
    parser.add_argument(
        "--release-freed-memory", action="store_true", help="autoalign's side: malloc_trim before each backward"
    )
    parser.add_argument("--no-grouping", action="store_true", help="random batches (dpo.group_by_length=false)")
    parser.add_argument("--processes", type=int, default=1, help="autoalign's side data-parallel in N processes")
    parser.add_argument("--trl", action="store_true", help="also run TRL's DPOTrainer, each side in its own process")
    parser.add_argument("--side", choices=["autoalign", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    pairs = load_pairs(args)

    if args.side:  # a child: one JSON line for the parent (from the main process)
        result = run_autoalign(args, pairs) if args.side == "autoalign" else run_trl(args, pairs)
        if distributed.current().is_main:
            print(json.dumps(result))
        return
    if not args.trl and args.processes == 1:
        describe(args, pairs, run_autoalign(args, pairs))
        return
    ours = child(args, "autoalign")
    describe(args, pairs, ours)
    if args.trl:
        report_trl(ours, child(args, "trl"))


def report_trl(ours: dict, theirs: dict) -> None:
    print(
        f"TRL DPOTrainer: {theirs['pairs_per_s']:.3f} pairs/s ({theirs['train_seconds']:.1f}s, {theirs['steps']} "
        f"steps, loss {theirs['first_loss']:.4f} -> {theirs['final_loss']:.4f}), peak memory {theirs['rss_gb']:.2f} GB"
    )
    print(f"RATIO dpo_vs_trl={ours['pairs_per_s'] / theirs['pairs_per_s']:.2f} rss_gb={ours['rss_gb']:.2f}")


if __name__ == "__main__":
    main()
