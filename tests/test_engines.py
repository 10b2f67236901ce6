"""The llama.cpp engine: GGUF export (round trip through transformers' own GGUF loader, and
greedy equality with the in-process model through a real llama-server), the managed server's
life cycle (health, stop by PID, a crash reported with its log), and clear errors."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from autoalign.config import ModelConfig
from autoalign.engines.gguf_export import ExportError, export_gguf, hf_state_dict, interleave_rope_rows
from autoalign.engines.llamacpp import check_engine, template_gguf
from autoalign.engines.llamacpp_build import EngineUnavailable, server_binary
from autoalign.engines.server import ManagedServer, ServerFailed


def test_rope_rows_interleave_per_head_by_hand():
    # One head of 8 rows: HF's halves [0 1 2 3] [4 5 6 7] become the pairs (0 4) (1 5) (2 6) (3 7).
    w = np.arange(8, dtype=np.float32).reshape(8, 1)
    assert interleave_rope_rows(w, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    # Two heads of 4 rows each are interleaved separately.
    assert interleave_rope_rows(w, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_rope_interleave_is_undone_by_transformers_gguf_loader():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    w = np.random.default_rng(0).normal(size=(3 * 8, 5)).astype(np.float32)
    undo = LlamaTensorProcessor(config={"num_attention_heads": 6, "num_key_value_heads": 3})
    assert np.array_equal(undo._reverse_permute_weights(interleave_rope_rows(w, 3), 6, 3), w)


def test_managed_server_health_reuse_and_stop_by_pid(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "health").write_text("ok")
    cmd = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", str(tmp_path / "www")]
    with ManagedServer(cmd, tmp_path / "logs" / "server.log") as server:
        pid = server.pid
        assert server.process.poll() is None and str(server.port) in server.command
        import httpx

        assert httpx.get(server.base_url + "/health").text == "ok"
    assert server.process.poll() is not None  # stopped
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('cannot load model.gguf'); sys.exit(3)"]
    with pytest.raises(ServerFailed, match=r"(?s)exited with code 3.*cannot load model.gguf"):
        ManagedServer(cmd, tmp_path / "server.log").start()


def test_engine_errors_say_what_to_set(tmp_path, tiny_model_dir):
    not_exe = tmp_path / "llama-server"
    not_exe.write_text("")
    with pytest.raises(EngineUnavailable, match="model.llamacpp.server: .* is not an executable file"):
        server_binary(str(not_exe))
    cfg = ModelConfig(name=str(tiny_model_dir), backend="llamacpp")
    assert template_gguf(cfg, tiny_model_dir) is None  # no GGUF describes it: llama.cpp's converter exports it
    with pytest.raises(EngineUnavailable, match="does not exist"):
        template_gguf(cfg.replaced(llamacpp={"template_gguf": str(tmp_path / "none.gguf")}), tiny_model_dir)


def test_engine_settings_that_change_no_answer_stay_out_of_keys():
    base = ModelConfig(backend="llamacpp")
    assert ModelConfig(backend="llamacpp", llamacpp={"parallel": 4, "threads": 1}).key() == base.key()
    assert ModelConfig(backend="llamacpp", llamacpp={"outtype": "q8_0"}).key() != base.key()
    assert "llamacpp" not in ModelConfig().key()  # the default backend's keys did not change


def test_servers_get_enough_chunks_in_flight_to_keep_their_slots_busy(tmp_path):
    from autoalign.config import EndpointConfig
    from autoalign.runtime.pool import EndpointRef, ModelPool, ModelRef

    ref = ModelRef("M", tmp_path, "m")
    assert ModelPool(ModelConfig()).in_flight(ref, 48) == 1  # in-process: one chunk at a time
    served = ModelPool(ModelConfig(backend="llamacpp", llamacpp={"parallel": 16}))
    # One chunk finishing, plus chunks for twice the slots.
    assert served.in_flight(ref, 48) == 2 and served.in_flight(ref, 16) == 3 and served.in_flight(ref, 10) == 5
    assert ModelPool(ModelConfig(backend="vllm")).in_flight(ref, 8) == 17  # 64 sequences at once
    endpoint = EndpointRef("teacher", EndpointConfig(base_url="http://127.0.0.1:1/v1", model="t", max_concurrency=4))
    assert served.in_flight(endpoint, 1) == 9


@pytest.mark.parametrize("native_bf16,expected", [(True, "bf16"), (False, "f16")])
def test_auto_weight_type_follows_the_cpu(monkeypatch, native_bf16, expected):
    from autoalign.engines import llamacpp

    monkeypatch.setattr(llamacpp, "fast_bf16", lambda device: native_bf16)
    assert llamacpp.weight_type(ModelConfig(backend="llamacpp")) == expected
    assert llamacpp.weight_type(ModelConfig(backend="llamacpp", llamacpp={"outtype": "q8_0"})) == "q8_0"


# ---- on the bundled SmolLM2 (real weights; the server binary is built once if missing) ----


@pytest.fixture(scope="module")
def smollm2_dir():
    from autoalign.models.bundled import ensure_bundled

    return ensure_bundled("smollm2-135m-instruct", log=lambda m: None)


@pytest.fixture(scope="module")
def smollm2_gguf():
    from autoalign.models.bundled import ensure_gguf

    return ensure_gguf("smollm2-135m-instruct", log=lambda m: None)


@pytest.mark.slow
@pytest.mark.parametrize("outtype,tolerance", [("f32", 0.0), ("f16", 2e-3), ("bf16", 8e-3), ("q8_0", 2e-2)])
def test_export_round_trips_through_transformers(tmp_path, smollm2_dir, smollm2_gguf, outtype, tolerance):
    import torch
    from transformers import AutoModelForCausalLM

    out = export_gguf(smollm2_dir, smollm2_gguf, tmp_path / f"m.{outtype}.gguf", outtype)
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name, dtype=torch.float32)
    back = {k: v.numpy() for k, v in loaded.state_dict().items()}
    original = hf_state_dict(smollm2_dir)
    assert set(original) <= set(back)
    for name, weight in original.items():
        scale = float(np.abs(weight).max()) or 1.0
        assert np.abs(back[name] - weight).max() <= tolerance * scale, name


@pytest.mark.slow
def test_export_refuses_a_checkpoint_of_another_model(tmp_path, tiny_model_dir, smollm2_gguf):
    with pytest.raises(ExportError, match=r"no tensor for|has shape"):
        export_gguf(tiny_model_dir, smollm2_gguf, tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())  # nothing half-written


QUESTIONS = ["What is the capital of France?", "Give one tip for sleeping well.", "Name a primary colour."]


@pytest.mark.slow
@pytest.mark.parametrize("outtype,logprob_tolerance", [("f16", 0.05), ("bf16", 0.15)])
def test_llamacpp_backend_matches_the_in_process_model(tmp_path, smollm2_dir, outtype, logprob_tolerance):
    """Greedy answers are the same text; the chosen tokens' log-probabilities agree closely (bf16
    keeps 8 bits of mantissa to f16's 11); a sample's seed reproduces it; the pool's release()
    stops the server by its PID."""
    from autoalign.generation.base import SamplingParams
    from autoalign.runtime.pool import ModelPool, ModelRef

    ref = ModelRef("M1", smollm2_dir, "smollm2-test")
    requests = [[{"role": "user", "content": q}] for q in QUESTIONS]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=32, top_logprobs=1)
    hf_pool = ModelPool(ModelConfig())
    expected = hf_pool.generator(ref).generate(requests, greedy)
    hf_pool.close()

    engine = {"parallel": 4, "outtype": outtype}
    pool = ModelPool(ModelConfig(backend="llamacpp", llamacpp=engine), engine_dir=tmp_path / "engines")
    generator = pool.generator(ref)
    got = generator.generate(requests, greedy)
    for (ours,), (theirs,) in zip(got, expected):
        assert ours.text == theirs.text and ours.num_tokens == theirs.num_tokens
        assert ours.finish_reason == theirs.finish_reason
        assert max(abs(a - b) for a, b in zip(ours.logprobs, theirs.logprobs)) < logprob_tolerance
    assert generator.usage.snapshot()["answered"] == 3

    sampled = SamplingParams(n=2, temperature=0.9, max_new_tokens=24, seed=5)
    first = pool.generator(ref, batch_size=2).generate(requests[:1], sampled)[0]
    assert first[0].text != first[1].text  # each sample has its own seed
    # One sequence alone reproduces from its seed; sequences decoded side by side may not (the
    # batch's composition changes the float sums), which is why answers are cached per request.
    alone = SamplingParams(n=1, temperature=0.9, max_new_tokens=24, seed=5)
    once = pool.generator(ref).generate(requests[1:2], alone)[0][0].text
    assert pool.generator(ref).generate(requests[1:2], alone)[0][0].text == once
    assert len(pool._engines) == 1  # one server per checkpoint, whatever the batch size
    server = next(iter(pool._engines.values()))
    assert list((tmp_path / "engines").glob(f"*-{outtype}.gguf")) and server.log_path.exists()
    pool.release()
    assert server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)


@pytest.mark.slow
def test_server_binary_is_found_or_built():
    binary = server_binary()
    assert binary.is_file() and os.access(binary, os.X_OK)


def test_auto_backend_is_llamacpp_only_when_its_server_is_installed(tmp_path, tiny_model_dir, monkeypatch):
    from autoalign.engines.llamacpp import fastest_backend

    template = tmp_path / "same-model.gguf"
    template.write_bytes(b"GGUF")
    cfg = ModelConfig(name=str(tiny_model_dir), backend="auto", llamacpp={"template_gguf": str(template)})
    monkeypatch.delenv("AUTOALIGN_LLAMA_SERVER", raising=False)
    monkeypatch.setenv("AUTOALIGN_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert fastest_backend(cfg, tiny_model_dir) == "transformers"  # nothing installed: no build either
    assert not (tmp_path / "tools").exists()

    server = tmp_path / "bin" / "llama-server"
    server.parent.mkdir()
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    assert fastest_backend(cfg, tiny_model_dir) == "llamacpp"
    without_template = cfg.replaced(llamacpp={})
    assert (
        fastest_backend(without_template, tiny_model_dir) == "transformers"
    )  # no converter fetched: auto fetches none


@pytest.mark.slow
def test_vllm_backend_path_with_llamacpp_behind_it(tmp_path, smollm2_dir, monkeypatch):
    """model.backend: vllm starts `<vllm.command> <checkpoint dir> --host 127.0.0.1 --port ...`
    (here tests/fake_vllm.py, which serves the checkpoint with llama.cpp), talks to it through the
    HTTP backend, reuses it and stops it by its PID; greedy answers equal the in-process model's."""
    import json
    from pathlib import Path

    from autoalign.generation.base import SamplingParams
    from autoalign.judges.base import JudgeItem
    from autoalign.judges.rubric import RubricJudge
    from autoalign.runtime.pool import ModelPool, ModelRef

    record = tmp_path / "vllm-args.json"
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(record))
    fake = [sys.executable, str(Path(__file__).parent / "fake_vllm.py"), "serve"]
    ref = ModelRef("M1", smollm2_dir, "smollm2-vllm-test")
    requests = [[{"role": "user", "content": q}] for q in QUESTIONS]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=24)
    hf_pool = ModelPool(ModelConfig())
    expected = [c[0].text for c in hf_pool.generator(ref).generate(requests, greedy)]
    items = [JudgeItem(r, "Paris is the capital of France.") for r in requests[:2]]
    hf_verdicts = RubricJudge(hf_pool.generator(ref), greedy, single_pass=True).judge(items)
    hf_pool.close()

    cfg = ModelConfig(backend="vllm", vllm={"command": fake, "parallel": 3, "startup_seconds": 300})
    pool = ModelPool(cfg, engine_dir=tmp_path / "engines")
    generator = pool.generator(ref)
    assert [c[0].text for c in generator.generate(requests, greedy)] == expected
    assert pool.generator(ref, batch_size=2).generate(requests[:1], greedy)[0][0].text == expected[0]
    assert len(pool._engines) == 1  # one server per checkpoint
    # single-pass verdicts through the server (the started reply sent as a final assistant message)
    served_verdicts = RubricJudge(generator, greedy, single_pass=True).judge(items)
    for ours, theirs in zip(served_verdicts, hf_verdicts):
        assert ours.parsed and theirs.parsed and abs(ours.score - theirs.score) < 0.1
    argv = json.loads(record.read_text())
    assert argv[:2] == ["serve", str(smollm2_dir)]
    for option, value in [("--host", "127.0.0.1"), ("--served-model-name", "autoalign"), ("--max-num-seqs", "3")]:
        assert argv[argv.index(option) + 1] == value
    assert "vLLM" in generator.label
    server = next(iter(pool._engines.values()))
    assert server.log_path.parent == tmp_path / "engines" / "logs" and server.log_path.name.startswith("vllm-")
    pool.release()
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)


def test_vllm_missing_launcher_is_reported_before_a_run(tmp_path):
    from autoalign.engines.vllm import check_vllm

    cfg = ModelConfig(backend="vllm", vllm={"command": [str(tmp_path / "no-such-vllm"), "serve"]})
    with pytest.raises(EngineUnavailable, match=r"model.vllm.command\) is not on PATH"):
        check_vllm(cfg)


# ---- checkpoints no bundled GGUF describes: llama.cpp's own converter ----


def tiny_model_with_smollm2_tokenizer(out_dir, smollm2_dir):
    """A 2-layer Llama that shares SmolLM2's tokenizer (one llama.cpp's converter knows), with
    weights large enough that greedy choices are not near-ties."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    source = json.loads((smollm2_dir / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=source["vocab_size"],
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.5,
        tie_word_embeddings=True,
        bos_token_id=source["bos_token_id"],
        eos_token_id=source["eos_token_id"],
    )
    LlamaForCausalLM(config).save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (smollm2_dir / name).exists():
            shutil.copy(smollm2_dir / name, out_dir / name)
    return out_dir


@pytest.mark.slow
def test_a_checkpoint_without_template_is_converted_and_served_alike(tmp_path, smollm2_dir):
    """HF -> GGUF through llama.cpp's converter -> llama-server: the same greedy tokens as the
    in-process model, log-probabilities close (f32 weights; llama-server keeps its KV cache in f16)."""
    from autoalign.generation.base import SamplingParams
    from autoalign.runtime.pool import ModelPool, ModelRef

    model_dir = tiny_model_with_smollm2_tokenizer(tmp_path / "tiny", smollm2_dir)
    ref = ModelRef("M", model_dir, "tiny-smollm2-tokenizer")
    cfg = ModelConfig(name=str(model_dir), backend="llamacpp", llamacpp={"parallel": 2, "outtype": "f32"})
    assert template_gguf(cfg, model_dir) is None
    check_engine(cfg, model_dir, log=lambda m: None)  # the vocabulary-only conversion passes
    requests = [[{"role": "user", "content": q}] for q in QUESTIONS]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16, top_logprobs=1)
    hf_pool = ModelPool(ModelConfig(name=str(model_dir)))
    expected = hf_pool.generator(ref).generate(requests, greedy)
    hf_pool.close()

    pool = ModelPool(cfg, engine_dir=tmp_path / "engines")
    got = pool.generator(ref).generate(requests, greedy)
    pool.release()
    for (ours,), (theirs,) in zip(got, expected):
        assert ours.text == theirs.text and ours.num_tokens == theirs.num_tokens == 16
        assert max(abs(a - b) for a, b in zip(ours.logprobs, theirs.logprobs)) < 0.05
    assert [p.name for p in (tmp_path / "engines").glob("*.gguf")] == [f"{ref.key}-f32.gguf"]
    assert (tmp_path / "engines" / "logs" / f"convert-{ref.key}.log").exists()
    assert not list((tmp_path / "engines").glob(".*"))  # no temporary file or input view left


@pytest.mark.slow
def test_a_model_llamacpp_cannot_convert_is_refused_before_the_run(tiny_model_dir):
    """The test suite's tiny model has a tokenizer trained for it, unknown to llama.cpp."""
    cfg = ModelConfig(name=str(tiny_model_dir), backend="llamacpp")
    with pytest.raises(EngineUnavailable, match=r"(?s)llama.cpp cannot export .*pre-tokenizer"):
        check_engine(cfg, tiny_model_dir, log=lambda m: None)
