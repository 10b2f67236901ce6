"""Shared fixtures. The tiny model is built from a config in memory (random weights, a byte-level
BPE tokenizer trained on a few sentences, the ChatML template), saved as a normal Hugging Face
directory, so every code path that loads checkpoints runs unchanged, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
CHATML = (Path(__file__).parents[1] / "src/autoalign/models/templates/chatml.jinja").read_text()

CORPUS = [
    "Write a short poem about the sea. Explain why the sky is blue in two sentences.",
    "Give three tips for staying focused while studying. What is the capital of France?",
    "Review the user's question and the assistant's response below, and score the response.",
    "Score: 0 Score: 1 Score: 2 Score: 3 Score: 4 Score: 5 Task: answer directly and concisely.",
    "def add(a, b): return a + b  # numbers 0 1 2 3 4 5 6 7 8 9 { } [ ] ( ) < > / | _ - = + * ?",
]


TINY_DIMS = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)
"""A decoder small enough that a test trains it in seconds (any architecture's config takes these)."""


def build_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    tokenizer.chat_template = CHATML

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        **TINY_DIMS,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    from autoalign.models.loading import load_model

    return load_model(tiny_model_dir)


# llama.cpp 0.3.36 repacks Q4 weights for the CPU's wide kernels at load; on CPUs with AMX
# (seen on a Sapphire Rapids host) the repacked Q4_1 weights crash the first batched decode
# (SIGSEGV in llama_decode; llama-server with --no-repack runs). llama_cpp.server has no switch
# for it, so the server process starts with the model's extra buffer types turned off.
SERVER_WITHOUT_REPACKING = """
import runpy
import llama_cpp.llama_cpp as c
defaults = c.llama_model_default_params
def without_repacking():
    params = defaults()
    params.use_extra_bufts = False
    return params
c.llama_model_default_params = without_repacking
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real llama.cpp OpenAI-compatible server (llama-cpp-python[server]) serving the bundled
    SmolLM2 GGUF on 127.0.0.1; started once per session and stopped by its PID."""
    import subprocess
    import sys
    import time

    import httpx

    from autoalign.models.bundled import ensure_gguf

    gguf = ensure_gguf("smollm2-135m-instruct", log=lambda m: None)
    from autoalign.engines.server import free_port

    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER_WITHOUT_REPACKING,
                "--model",
                str(gguf),
                "--model_alias",
                "smollm2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
                "--verbose",
                "False",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama.cpp server did not come up in 180 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
