"""Stands in for `vllm serve` in tests (there is no GPU here): takes the same command line the
vllm backend builds, records it, exports the checkpoint directory to GGUF with autoalign's own
exporter and replaces itself with llama.cpp's server on the same host, port and model name. So
the vllm backend's managed-server path (start, health, requests, reuse, stop by PID) runs for
real; only the engine behind the port differs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from autoalign.engines.gguf_export import export_gguf
from autoalign.engines.llamacpp_build import server_binary
from autoalign.models.bundled import ensure_gguf
from autoalign.models.loading import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("verb", choices=["serve"])
    parser.add_argument("model_dir", type=Path)
    for option in ("--host", "--port", "--served-model-name", "--dtype", "--max-num-seqs"):
        parser.add_argument(option, required=True)
    parser.add_argument("--gpu-memory-utilization", type=float, required=True)
    parser.add_argument("--chat-template")
    args = parser.parse_args()
    Path(os.environ["FAKE_VLLM_RECORD"]).write_text(json.dumps(sys.argv[1:]))

    gguf = Path(os.environ["FAKE_VLLM_RECORD"]).with_suffix(".gguf")
    template = ensure_gguf("smollm2-135m-instruct", log=lambda m: None)
    export_gguf(args.model_dir, template, gguf, "f16", load_tokenizer(args.model_dir).chat_template)
    binary = str(server_binary())
    os.execv(
        binary,
        [
            binary,
            "--model", str(gguf),
            "--alias", args.served_model_name,
            "--host", args.host,
            "--port", args.port,
            "--parallel", args.max_num_seqs,
            "--ctx-size", str(2048 * int(args.max_num_seqs)),
            "--threads", str(os.cpu_count() or 1),
            "--jinja",
            "--offline",
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
