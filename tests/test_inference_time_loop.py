"""loop: inference_time on the tiny model: every method answers the same IFEval prompts, the
answers follow from the shared samples as each method's rule says, the table pairs each method
with plain sampling, costs add up, and a re-run is read back without generating."""

from __future__ import annotations

import pytest
from test_loop_tiny import tiny_config

from autoalign.config import ConfigError
from autoalign.config.evaluation import INFERENCE_TABLE
from autoalign.eval.paired import paired_difference
from autoalign.inference.self_consistency import consensus
from autoalign.io import read_json, read_jsonl
from autoalign.loops import inference_time, iterate

METHODS = "[plain,greedy,best_of_n_verifier,best_of_n_judge,self_consistency,self_refine,constitutional,debate,urial]"
SMALL = [
    "loop=inference_time",
    "sft.enabled=false",
    "inference_time.prompts=5",
    "inference_time.head_to_head_prompts=2",
    "inference_time.n=3",
    f"inference_time.methods={METHODS}",
    "inference_time.sampling.max_new_tokens=12",
    "inference_time.sampling.batch_size=4",
    "self_refine.max_rounds=1",
    "self_refine.sampling.max_new_tokens=8",
    "constitution.sampling.max_new_tokens=8",
    "debate.sampling.max_new_tokens=8",
    "debate.judge_sampling.max_new_tokens=8",
    "judge.sampling.max_new_tokens=8",
]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(tiny_model_dir, runs, *SMALL)
    result = iterate.run(cfg, log=lambda m: None)
    return runs / "tiny", cfg, result


def rows(run_dir, stage):
    return {r["id"]: r for r in read_jsonl(run_dir / "iter_1" / stage / "data.jsonl")}


def test_each_method_answers_by_its_rule_from_the_shared_samples(run_dir):
    root, cfg, _ = run_dir
    samples = {i: [c["text"] for c in r["candidates"]] for i, r in rows(root, "inference_samples").items()}
    assert len(samples) == 5 and all(len(s) == 3 for s in samples.values())
    answer = lambda method: {i: r["answer"]["text"] for i, r in rows(root, f"inference_{method}").items()}
    assert answer("plain") == {i: s[0] for i, s in samples.items()}
    for method in ("best_of_n_verifier", "best_of_n_judge"):
        for i, r in rows(root, f"inference_{method}").items():
            scores = r["detail"]["scores"]
            assert len(scores) == 3
            ranked = [-1 if s is None else s for s in scores]
            assert r["detail"]["picked"] == ranked.index(max(ranked))  # the earliest of the best
            assert r["answer"]["text"] == samples[i][r["detail"]["picked"]]
    for i, text in answer("self_consistency").items():
        agreed = consensus(samples[i], cfg.consistency.agreement, cfg.consistency.threshold)
        assert text == samples[i][agreed.representative]
    for i, r in rows(root, "inference_self_refine").items():
        assert r["detail"]["rounds"][0]["text"] == samples[i][0]
        assert r["answer"]["text"] == r["detail"]["rounds"][r["detail"]["best"]]["text"]
    for i, r in rows(root, "inference_constitutional").items():
        assert r["detail"]["original"] == samples[i][0] and r["answer"]["text"] == r["detail"]["revised"]
    for i, r in rows(root, "inference_debate").items():
        winner = r["detail"]["preference"]["winner"]
        assert r["answer"]["text"] == samples[i][1 if winner == "second" else 0]


def test_table_pairs_every_method_with_plain_and_counts_its_cost(run_dir):
    root, _, result = run_dir
    table = read_json(root / INFERENCE_TABLE)
    assert table["baseline"] == "plain" and list(table["methods"]) == METHODS.strip("[]").split(",")
    assert result["methods"] == table["methods"] and result["final_model"] is None
    plain_scores = rows(root, "ifeval_inference_plain")
    for method, row in table["methods"].items():
        scores = rows(root, f"ifeval_inference_{method}")
        expected = paired_difference(
            [all(plain_scores[i]["strict"]) for i in sorted(scores)], [all(scores[i]["strict"]) for i in sorted(scores)]
        )
        assert row["prompt_strict"] == expected
        answers = list(rows(root, f"inference_{method}").values())
        assert row["tokens_per_prompt"] == pytest.approx(
            sum(r["sample_tokens"] + r["own_tokens"] for r in answers) / len(answers)
        )
        assert row["seconds_per_prompt"] > 0
        assert row["oracle"] == (method == "best_of_n_verifier")
        assert ("head_to_head" in row) == (method != "plain")
        if method != "plain":
            assert row["head_to_head"]["prompts"] == 2
    samples = read_jsonl(root / "iter_1/inference_samples/data.jsonl")
    sample_tokens = [[c["num_tokens"] for c in r["candidates"]] for r in samples]
    costs = table["methods"]
    assert costs["plain"]["tokens_per_prompt"] == pytest.approx(sum(t[0] for t in sample_tokens) / 5)
    assert costs["best_of_n_verifier"]["tokens_per_prompt"] == pytest.approx(sum(map(sum, sample_tokens)) / 5)
    # judging the same samples costs the judge's tokens on top
    assert costs["best_of_n_judge"]["tokens_per_prompt"] > costs["best_of_n_verifier"]["tokens_per_prompt"]
    assert costs["self_refine"]["tokens_per_prompt"] > costs["plain"]["tokens_per_prompt"]


def test_a_finished_run_is_read_back(run_dir, monkeypatch):
    _, cfg, result = run_dir

    def refuse(*args, **kwargs):
        raise AssertionError("a finished stage generated again")

    monkeypatch.setattr(inference_time, "critique_and_revise", refuse)
    monkeypatch.setattr(inference_time, "debate", refuse)
    monkeypatch.setattr(inference_time, "self_refine", refuse)
    again = iterate.run(cfg, log=lambda m: None)
    assert again["methods"] == result["methods"]


def test_config_names_unknown_methods_and_a_missing_baseline(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown method.*best_of_9"):
        tiny_config(tiny_model_dir, tmp_path, "loop=inference_time", "inference_time.methods=[plain,best_of_9]")
    with pytest.raises(ConfigError, match="baseline 'plain' must be one of methods"):
        tiny_config(tiny_model_dir, tmp_path, "loop=inference_time", "inference_time.methods=[greedy]")
    with pytest.raises(ConfigError, match="debate choose among samples: inference_time.n must be >= 2"):
        tiny_config(tiny_model_dir, tmp_path, "loop=inference_time", "inference_time.n=1",
                    "inference_time.methods=[plain,debate]")  # fmt: skip
    with pytest.raises(ConfigError, match="base_methods compare M0 with its SFT"):
        tiny_config(tiny_model_dir, tmp_path, "loop=inference_time", "inference_time.base_methods=[urial]")


def test_base_methods_answer_with_the_model_before_sft(tiny_model_dir, tmp_path):
    sft = ["sft.enabled=true", "sft.use_eft=false", "sft.batch_size=4", "sft.grad_accum=1", "sft.max_length=256"]
    base = ["inference_time.methods=[plain]", "inference_time.base_methods=[plain,urial]", "inference_time.n=1"]
    cfg = tiny_config(tiny_model_dir, tmp_path, *SMALL, *sft, *base)  # later overrides win
    result = iterate.run(cfg, log=lambda m: None)
    assert list(result["methods"]) == ["plain", "base:plain", "base:urial"]
    run = tmp_path / "tiny/iter_1"
    assert read_json(run / "inference_samples/metrics.json")["model"] == "M1"
    assert read_json(run / "inference_samples_base/metrics.json")["model"] == "M0"
    base_samples = read_jsonl(run / "inference_samples_base/data.jsonl")
    base_plain = read_jsonl(run / "inference_base_plain/data.jsonl")
    assert [r["answer"]["text"] for r in base_plain] == [r["candidates"][0]["text"] for r in base_samples]
    assert read_json(run / "inference_base_urial/metrics.json")["model"] == "M0"
    assert all(row["head_to_head"]["prompts"] == 2 for k, row in result["methods"].items() if k != "plain")
