"""The whole self-rewarding loop on a tiny random model, in seconds: every stage's artifact,
their counts, training that moves the policy and never the reference, and resume."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from autoalign.config import load_config
from autoalign.io import read_json, read_jsonl, read_records
from autoalign.runtime import pool as pool_module
from autoalign.loops import iterate
from autoalign.types import Judgment

FIX = Path(__file__).parent / "fixtures"


class LetterVarietyJudge:
    """A programmatic verifier standing in for the LLM judge (a random tiny model cannot write a
    rubric verdict): score = distinct ASCII letters // 4, capped at 5. Deterministic, so pairs exist."""

    calls = 0

    def judge(self, items):
        LetterVarietyJudge.calls += len(items)
        out = []
        for item in items:
            letters = {ch for ch in item.response.lower() if "a" <= ch <= "z"}
            out.append(
                Judgment(
                    score=min(5, len(letters) // 4), raw=["verifier"], parsed=True, samples=[min(5, len(letters) // 4)]
                )
            )
        return out


class LetterVarietyFactory:
    """The judge factory contract (judges/base.py): a key, and a call that builds the judge."""

    key = "letter-variety"
    kind = "verifier"

    def __init__(self, judge_class=LetterVarietyJudge):
        self.judge_class = judge_class

    def __call__(self, ref, cfg, seed):
        return self.judge_class()


make_verifier = LetterVarietyFactory()


def tiny_config(model_dir: Path, runs: Path, *extra: str):
    overrides = [
        f"model.name={model_dir}",
        f"runs_dir={runs}",
        "name=tiny",
        "iterations=2",
        f"data.ift={FIX / 'ift_small.jsonl'}",
        f"data.eft={FIX / 'eft_small.jsonl'}",
        f"data.heldout={FIX / 'heldout_small.jsonl'}",
        f"create_prompts.from_file={FIX / 'prompts_small.jsonl'}",
        "create_prompts.num_prompts=6",
        "sample.n=4",
        "sample.sampling.max_new_tokens=16",
        "sample.sampling.temperature=1.0",
        "sample.sampling.batch_size=4",
        "judge.sampling.max_new_tokens=8",
        "dpo.learning_rate=0.001",
        "dpo.epochs=2",
        "dpo.batch_size=2",
        "dpo.grad_accum=1",
        "dpo.max_length=128",
        "dpo.warmup_ratio=0",
        "eval.num_prompts=3",
        "eval.sampling.max_new_tokens=8",
        *extra,
    ]
    return load_config(None, overrides)


def weights_digest(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


def state(model_dir: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


def test_self_reward_loop_end_to_end(tiny_model_dir, tmp_path, monkeypatch):
    m0_digest = weights_digest(tiny_model_dir)
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "eval.ifeval_prompts=4",
        "eval.ifeval_sampling.max_new_tokens=8",
        f"eval.reward_data={FIX / 'oasst_small.jsonl'}",
    )
    result = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny"

    for t in (1, 2):
        it = run / f"iter_{t}"
        prompts = read_jsonl(it / "prompts/data.jsonl")
        assert len(prompts) == 6
        candidates = read_jsonl(it / "candidates/data.jsonl")
        assert [r["id"] for r in candidates] == [p["id"] for p in prompts]
        assert all(len(r["candidates"]) == 4 for r in candidates)
        assert read_json(it / "candidates/metrics.json")["candidates"] == 24
        judgments = read_jsonl(it / "judgments/data.jsonl")
        assert all(len(r["judgments"]) == 4 for r in judgments)
        jm = read_json(it / "judgments/metrics.json")
        assert jm["judged"] == 24 and jm["parse_rate"] == 1.0 and sum(jm["score_histogram"].values()) == 24
        pairs = read_jsonl(it / "pairs/data.jsonl")
        pm = read_json(it / "pairs/metrics.json")
        assert pm["pairs"] == len(pairs) >= 1
        assert pm["pairs"] + sum(pm["dropped"].values()) == 6
        for pair in pairs:
            assert pair["chosen_score"] > pair["rejected_score"] and pair["margin"] > 0
            assert set(pair) >= {"prompt", "chosen", "rejected"}
        dm = read_json(it / "dpo/metrics.json")
        assert dm["pairs"] == len(pairs) and dm["steps"] == len(read_jsonl(it / "dpo/data.jsonl"))
        assert len(list((it / "dpo").glob("reference_logps-*.json"))) == 1
        assert not list((it / "dpo").glob("train_state*"))  # removed once the stage finished
        em = read_json(it / "eval/metrics.json")
        assert em["prompts"] == 3 and em["wins"] + em["ties"] + em["losses"] + em["unscored"] == 3
        assert em["new"] == f"M{t + 1}" and em["old"] == f"M{t}"
        h2h = read_json(it / "eval_h2h/metrics.json")
        assert h2h["wins"] + h2h["ties"] + h2h["losses"] + h2h["unparsed"] == 3
        assert h2h["n"] + h2h["dropped"] == 3 and (h2h["model"], h2h["baseline"]) == (f"M{t + 1}", f"M{t}")
        assert len(read_jsonl(it / "eval_h2h/data.jsonl")) == 3
        ifeval = read_json(it / f"ifeval_M{t + 1}/metrics.json")
        assert ifeval["prompts"] == 4 and 0 <= ifeval["prompt_loose"] <= 1
        rm = read_json(it / f"reward_modeling_M{t + 1}/metrics.json")
        assert rm["responses"] == 5 and rm["coverage"] == 1.0 and rm["pairs"] == 4  # 3 + 1 gold-ordered pairs
    # The older model's judge-independent stages are read from where they were made: M1's in
    # iteration 1, M2's (the newer model of iteration 1) are not made again in iteration 2.
    assert (run / "iter_1/eval_answers_M1").exists() and (run / "iter_1/ifeval_M1").exists()
    for stage in ("eval_answers_M2", "ifeval_answers_M2", "ifeval_M2", "reward_modeling_M2"):
        assert not (run / "iter_2" / stage).exists(), stage
    assert (run / "iter_2/eval_judgments_M2").exists()  # judged again: the judge may differ per iteration

    # The pairs load in `datasets` as a conversational preference dataset.
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(run / "iter_1/pairs/data.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert dataset[0]["chosen"][0]["role"] == "assistant"

    # The first DPO step starts at policy == reference, so its loss is ln 2 (up to float error).
    first = read_jsonl(run / "iter_1/dpo/data.jsonl")[0]
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)

    # Policy moved; references (M0 on disk, and M2 while it served as iteration 2's reference) did not.
    m2 = run / "iter_1/dpo/model"
    m3 = Path(result["final_model"])
    assert m3 == run / "iter_2/dpo/model"
    assert weights_digest(tiny_model_dir) == m0_digest
    s0, s2, s3 = state(tiny_model_dir), state(m2), state(m3)
    assert any(not torch.equal(s0[k], s2[k]) for k in s0)
    assert any(not torch.equal(s2[k], s3[k]) for k in s2)
    assert (m2 / "tokenizer_config.json").exists()

    # Re-running the same command completes from the store without loading any model.
    def no_loading(*args, **kwargs):
        raise AssertionError("a cached run must not load a model")

    m3_digest, manifest = weights_digest(m3), read_json(run / "manifest.json")
    monkeypatch.setattr(pool_module, "load_model", no_loading)
    again = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert again["final_model"] == result["final_model"]
    assert weights_digest(m3) == m3_digest and read_json(run / "manifest.json") == manifest  # nothing was redone


def test_changing_dpo_config_reruns_only_dpo_and_after(tiny_model_dir, tmp_path):
    cfg = tiny_config(tiny_model_dir, tmp_path, "iterations=1")
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    before = read_json(tmp_path / "tiny/manifest.json")["stages"]
    m2_answers = lambda: [
        r["candidates"][0]["text"] for r in read_jsonl(tmp_path / "tiny/iter_1/eval_answers_M2/data.jsonl")
    ]
    answers_before = m2_answers()
    LetterVarietyJudge.calls = 0
    cfg2 = tiny_config(tiny_model_dir, tmp_path, "iterations=1", "dpo.beta=0.5")
    iterate.run(cfg2, log=lambda m: None, make_judge=make_verifier)
    after = read_json(tmp_path / "tiny/manifest.json")["stages"]
    for stage in ("prompts", "candidates", "judgments", "pairs"):
        assert after[f"iter_1/{stage}"] == before[f"iter_1/{stage}"]
    assert after["iter_1/dpo"]["key"] != before["iter_1/dpo"]["key"]
    assert after["iter_1/eval"]["key"] != before["iter_1/eval"]["key"]
    # Only the new M2's eval answers go to the judge, and only if their text changed (verdicts
    # are keyed by content); M1's answers and verdicts are reused.
    assert LetterVarietyJudge.calls == (0 if m2_answers() == answers_before else 3)
    assert after["iter_1/eval_answers_M1"] == before["iter_1/eval_answers_M1"]
    assert after["iter_1/eval_answers_M2"]["key"] != before["iter_1/eval_answers_M2"]["key"]


def test_crash_mid_judging_resumes_without_redoing_finished_items(tiny_model_dir, tmp_path):
    class CrashingJudge(LetterVarietyJudge):
        def judge(self, items):
            if LetterVarietyJudge.calls >= 8:  # two chunks of 2 prompts x 4 candidates done
                raise KeyboardInterrupt("simulated crash")
            return super().judge(items)

    cfg = tiny_config(tiny_model_dir, tmp_path, "iterations=1", "judge.sampling.batch_size=4")
    LetterVarietyJudge.calls = 0
    with pytest.raises(KeyboardInterrupt):
        iterate.run(cfg, log=lambda m: None, make_judge=LetterVarietyFactory(CrashingJudge))
    partial = list((tmp_path / "tiny/iter_1/judgments").glob("partial-*.jsonl"))
    assert len(partial) == 1 and [len(r["rows"]) for r in read_records(partial[0])] == [2]  # one finished chunk
    assert not (tmp_path / "tiny/iter_1/judgments/data.jsonl").exists()

    LetterVarietyJudge.calls = 0
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    # 4 remaining prompts x 4 candidates, plus the eval's 3 + 3 answers; the first 2 prompts were kept.
    assert LetterVarietyJudge.calls == 16 + 6
    assert len(read_jsonl(tmp_path / "tiny/iter_1/judgments/data.jsonl")) == 6
    assert not list((tmp_path / "tiny/iter_1/judgments").glob("partial-*.jsonl"))


def test_sft_stage_builds_m1_from_ift_and_eft(tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "sft.enabled=true",
        "sft.learning_rate=0.001",
        "sft.batch_size=4",
        "sft.grad_accum=1",
        "sft.max_length=512",
        "eval.enabled=false",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    sft = read_json(tmp_path / "tiny/iter_0/sft/metrics.json")
    assert sft["examples"] == 6 + 2  # IFT + EFT
    history = read_jsonl(tmp_path / "tiny/iter_0/sft/data.jsonl")
    assert history[-1]["loss"] < history[0]["loss"]
    m1 = tmp_path / "tiny/iter_0/sft/model"
    assert any(not torch.equal(a, b) for a, b in zip(state(tiny_model_dir).values(), state(m1).values()))
    assert not (tmp_path / "tiny/iter_1/eval").exists()


def test_lora_dpo_merges_into_a_plain_checkpoint(tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "dpo.lora.enabled=true",
        "dpo.lora.r=4",
        "dpo.lora.alpha=8",
        "dpo.learning_rate=0.01",
        "eval.enabled=false",
    )
    result = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    trained = Path(result["final_model"])
    assert not (trained / "adapter_config.json").exists()
    before, after = state(tiny_model_dir), state(trained)
    assert set(before) == set(after)  # merged: no lora_A/lora_B keys left
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(any(m in k for m in ("q_proj", "k_proj", "v_proj", "o_proj")) for k in changed)
