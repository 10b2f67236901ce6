"""The OpenAI-compatible backend against a real llama.cpp server (llama-cpp-python[server])
serving the bundled SmolLM2 GGUF on 127.0.0.1: sampling, seeds, token accounting, the cache,
log-probabilities, a probability-weighted rubric judge, and a teacher loop with the server as
teacher."""

from __future__ import annotations

import pytest

from autoalign.config import EndpointConfig
from autoalign.data import load_eft
from autoalign.judges.rubric import judge_demonstrations
from autoalign.generation.base import SamplingParams
from autoalign.generation.http_cache import ResponseCache
from autoalign.generation.openai import OpenAIGenerator
from autoalign.io import read_json, read_jsonl
from autoalign.judges.base import JudgeItem
from autoalign.judges.rubric import RubricJudge
from autoalign.loops import iterate
from test_loop_tiny import make_verifier, tiny_config

pytestmark = pytest.mark.slow

QUESTIONS = ["What is the capital of France?", "Give one tip for sleeping well.", "Name a primary colour."]


def ask(*texts):
    return [[{"role": "user", "content": t}] for t in texts]


def test_sampling_seeds_usage_and_cache(llama_server, tmp_path):
    cfg = EndpointConfig(base_url=llama_server, model="smollm2", max_concurrency=2)
    params = SamplingParams(n=2, temperature=0.9, max_new_tokens=40, seed=3)
    gen = OpenAIGenerator(cfg, ResponseCache(tmp_path / "cache.sqlite"))
    out = gen.generate(ask(*QUESTIONS), params)
    cands = [c for cs in out for c in cs]
    assert len(cands) == 6 and all(c.text and c.finish_reason in {"stop", "length"} and c.error is None for c in cands)
    assert all(1 <= c.num_tokens <= 40 for c in cands)
    assert "paris" in " ".join(c.text.lower() for c in out[0])
    usage = gen.usage.snapshot()
    assert (
        usage["requests"] == 6
        and usage["answered"] == 6
        and usage["completion_tokens"] == sum(c.num_tokens for c in cands)
    )
    assert usage["prompt_tokens"] > 6 * 10

    again = OpenAIGenerator(cfg, ResponseCache(tmp_path / "cache.sqlite"))
    assert again.generate(ask(*QUESTIONS), params) == out
    assert again.usage.snapshot()["requests"] == 0 and again.usage.snapshot()["cache_hits"] == 6

    # The same seed reproduces a sample on the server itself (no cache).
    fresh = OpenAIGenerator(cfg, None).generate(
        ask(QUESTIONS[1]), SamplingParams(n=1, temperature=0.9, max_new_tokens=40, seed=3)
    )
    assert fresh[0][0].text == out[1][0].text


def test_logprobs_from_the_server(llama_server):
    gen = OpenAIGenerator(EndpointConfig(base_url=llama_server, model="smollm2"), None)
    cand = gen.generate(ask(QUESTIONS[0]), SamplingParams(temperature=0.0, max_new_tokens=16, top_logprobs=3))[0][0]
    assert cand.tokens and len(cand.tokens) == len(cand.top_logprobs) == len(cand.logprobs)
    assert "".join(cand.tokens).strip() == cand.text
    for token, lp, top in zip(cand.tokens, cand.logprobs, cand.top_logprobs):
        assert lp <= 0 and len(top) == 3 and all(v <= 0 for v in top.values())
        if token in top:  # (llama.cpp's repeat penalty may pick a token outside the raw top-k)
            assert top[token] == pytest.approx(lp)
    assert sum(token in top for token, top in zip(cand.tokens, cand.top_logprobs)) >= len(cand.tokens) // 2


def test_rubric_judge_reads_probabilities_from_the_server(llama_server):
    eft = load_eft("builtin:seed_eft.jsonl")
    demos = judge_demonstrations(eft, [5, 1])
    gen = OpenAIGenerator(EndpointConfig(base_url=llama_server, model="smollm2", max_concurrency=2), None)
    judge = RubricJudge(
        gen, SamplingParams(temperature=0.0, max_new_tokens=120), demonstrations=demos, use_logprobs=True
    )
    items = [
        JudgeItem(ask(q)[0], a)
        for q, a in [(QUESTIONS[0], "The capital of France is Paris."), (QUESTIONS[2], "Red is a primary colour.")]
    ]
    verdicts = judge.judge(items)
    parsed = [v for v in verdicts if v.parsed]
    assert parsed, [v.raw for v in verdicts]
    for v in parsed:
        assert 0 <= v.score <= 5 and v.samples[0] is not None
    # The score is the expectation under the judge's digit probabilities, not the integer it wrote.
    assert any(v.score != v.samples[0] for v in parsed)


def test_teacher_loop_with_the_server_as_teacher(llama_server, tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "loop=mixed",
        "mix={teacher_demo: 1.0, teacher_reward: 0.5}",
        "teacher_reward.mode=pairwise",
        "sample.n=2",
        "create_prompts.num_prompts=3",
        f"teacher.endpoint.base_url={llama_server}",
        "teacher.endpoint.model=smollm2",
        "teacher.endpoint.max_concurrency=2",
        "teacher.sampling.max_new_tokens=96",
        "judge.sampling.max_new_tokens=80",
        "eval.enabled=false",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    it = tmp_path / "tiny/iter_1"
    answers = read_jsonl(it / "teacher_answers/data.jsonl")
    assert len(answers) == 3 and all(r["candidates"][0]["text"] for r in answers)
    comparisons = read_json(it / "comparisons/metrics.json")
    assert comparisons["comparisons"] == 3
    assert comparisons["consistent"] + comparisons["order_inconsistent"] + comparisons["unparsed"] == 3
    usage = next(iter(read_json(it / "comparisons/metrics.json")["remote"].values()))
    assert usage["requests"] == 6 and usage["completion_tokens"] > 0
    pairs = read_json(it / "pairs/metrics.json")
    # Every teacher answer that finished becomes a pair (the tiny student never writes it); one cut off at the
    # token limit is dropped as a reference, whichever the server happened to write.
    finished = sum(r["candidates"][0]["finish_reason"] == "stop" for r in answers)
    demo = read_json(it / "pairs_teacher_demo/metrics.json")
    assert demo["dropped"].get("reference_truncated", 0) == 3 - finished
    assert pairs["by_source"]["teacher_demo"] == finished >= 1
    assert pairs["by_source"]["teacher_reward"] == comparisons["consistent"]
    assert (it / "dpo/model/config.json").exists()
