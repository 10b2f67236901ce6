"""SFT throughput and peak memory, e.g. on the bundled Gemma 3 270M base (262k vocabulary):

    python bench/sft.py [--model gemma-3-270m] [--examples 32] [--batch-size 4] [--max-length 512]
                        [--freeze-embeddings] [--activation-checkpointing 1]

Trains on the first --examples conversations of the bundled IFT seed with train_sft exactly as a
run calls it (chunked answer log-probs, length-grouped batches, AdamW, one epoch). The last line
is `RESULT sft examples_per_s=<x> rss_gb=<peak RSS of this process>`.
"""

from __future__ import annotations

import argparse
import resource
import time

from autoalign.config import SFTConfig
from autoalign.data import load_ift
from autoalign.models import resolve_model
from autoalign.models.loading import load_model
from autoalign.train.sft import train_sft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--chat-template", default=None, help="for a base model without one (bundled: set)")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--activation-checkpointing", type=int, default=0, metavar="N")
    args = parser.parse_args()

    conversations = load_ift("builtin:seed_ift.jsonl")[: args.examples]
    cfg = SFTConfig(
        enabled=True,
        batch_size=args.batch_size,
        grad_accum=1,
        epochs=1,
        max_length=args.max_length,
        freeze_embeddings=args.freeze_embeddings,
        activation_checkpointing=args.activation_checkpointing,
    )
    loaded = load_model(resolve_model(args.model), chat_template=args.chat_template)
    start = time.perf_counter()
    _, history, stats = train_sft(loaded, conversations, cfg, seed=0)
    seconds = time.perf_counter() - start
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    params = sum(p.numel() for p in loaded.model.parameters())
    print(
        f"model {args.model} ({params / 1e6:.0f}M parameters), {stats['examples']} examples, batch {args.batch_size}, "
        f"max length {args.max_length}, embeddings {'frozen' if args.freeze_embeddings else 'trained'}, "
        f"activation checkpointing {args.activation_checkpointing}"
    )
    print(f"{len(history)} steps in {seconds:.1f}s, loss {history[0]['loss']:.4f} -> {history[-1]['loss']:.4f}")
    print(f"RESULT sft examples_per_s={stats['examples'] / seconds:.3f} rss_gb={rss_gb:.2f}")


if __name__ == "__main__":
    main()
