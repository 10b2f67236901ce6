"""The teacher paradigms end to end on the tiny student: teacher-demo through a misbehaving
OpenAI-compatible server (every item answered or recorded as failed, with counts), gold-vs-sample,
mixed sources with weights, pairwise teacher-reward, and the branch comparison."""

from __future__ import annotations

from pathlib import Path

from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate
from fault_server import FaultServer
from test_loop_tiny import FIX, make_verifier, tiny_config

ENDPOINT = [
    "teacher.endpoint.model=teacher",
    "teacher.endpoint.backoff_seconds=0.01",
    "teacher.endpoint.backoff_max_seconds=0.05",
    "teacher.endpoint.timeout_seconds=1",
    "teacher.endpoint.max_retries=2",
    "teacher.endpoint.max_concurrency=2",
]


def test_teacher_demo_through_faulty_server_records_every_item(tiny_model_dir, tmp_path):
    # 6 prompts. The first request meets 429 then 500 (retried, answered); then 3 requests get
    # HTTP 400 (not retried: those 3 items fail); a malformed reply is retried; the rest succeed.
    schedule = ["429", "500", "400", "400", "400", "malformed"]
    with FaultServer(schedule, retry_after=0) as server:
        cfg = tiny_config(
            tiny_model_dir,
            tmp_path,
            "iterations=1",
            "loop=teacher_demo",
            f"teacher.endpoint.base_url={server.base_url}",
            *ENDPOINT,
            "teacher.endpoint.max_concurrency=1",
            "eval.enabled=false",
        )
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        requests_made = len(server.bodies)
    run = tmp_path / "tiny/iter_1"
    answers = read_json(run / "teacher_answers/metrics.json")
    assert answers["candidates"] == 6 and answers["failed"] == 3
    usage = answers["remote"]["teacher @ " + server.base_url]
    assert usage["answered"] == 3 and usage["failed"] == 3 and usage["requests"] == requests_made == 9
    assert usage["errors"] == {"http_429": 1, "http_500": 1, "http_400": 3, "malformed": 1}
    rows = read_jsonl(run / "teacher_answers/data.jsonl")
    failed = [c for r in rows for c in r["candidates"] if c["finish_reason"] == "error"]
    assert len(failed) == 3 and all(c["error"].startswith(f"teacher @ {server.base_url}: http_400") for c in failed)
    pairs = read_json(run / "pairs/metrics.json")
    assert (
        pairs["pairs"] == 3
        and pairs["dropped"] == {"reference_failed": 3}
        and pairs["by_source"] == {"teacher_demo": 3}
    )
    for pair in read_jsonl(run / "pairs/data.jsonl"):
        assert pair["chosen"][0]["content"].startswith("Answer to: ") and pair["source"] == "teacher_demo"
    assert (run / "dpo/model/config.json").exists()


def test_rerun_asks_the_server_only_for_what_it_never_answered(tiny_model_dir, tmp_path):
    with FaultServer(["400", "400"]) as server:
        cfg = tiny_config(
            tiny_model_dir,
            tmp_path,
            "iterations=1",
            "loop=teacher_demo",
            f"teacher.endpoint.base_url={server.base_url}",
            *ENDPOINT,
            "teacher.endpoint.max_concurrency=1",
            "eval.enabled=false",
        )
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert len(server.bodies) == 6
        (tmp_path / "tiny/manifest.json").unlink()  # forget every stage; the HTTP cache stays
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert len(server.bodies) == 6 + 2  # the 4 answers came from the cache, the 2 failures were retried
    answers = read_json(tmp_path / "tiny/iter_1/teacher_answers/metrics.json")
    assert answers["failed"] == 0 and answers["remote"]["teacher @ " + server.base_url]["cache_hits"] == 4


def test_gold_vs_sample_and_weighted_mix(tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=2",
        "loop=mixed",
        "mix={gold_vs_sample: 2.0, self_reward: 0.5}",
        f"gold.file={FIX / 'ift_small.jsonl'}",
        "gold.num_prompts=4",
        "eval.enabled=false",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    for t in (1, 2):
        it = tmp_path / f"tiny/iter_{t}"
        gold = read_jsonl(it / "pairs_gold_vs_sample/data.jsonl")
        assert len(gold) == 4 and len(read_jsonl(it / "gold_samples/data.jsonl")) == 4
        ift_answers = {
            r["messages"][-1]["content"] if "messages" in r else r["response"]
            for r in read_jsonl(FIX / "ift_small.jsonl")
        }
        assert all(p["chosen"][0]["content"] in ift_answers for p in gold)
        mixed = read_jsonl(it / "pairs/data.jsonl")
        metrics = read_json(it / "pairs/metrics.json")
        assert metrics["by_source"]["gold_vs_sample"] == 4 and len(mixed) == 4 + metrics["by_source"]["self_reward"]
        assert {p["source"]: p["weight"] for p in mixed} == {"gold_vs_sample": 2.0, "self_reward": 0.5}
        assert all(k.startswith(("gold_vs_sample/", "self_reward/")) for k in metrics["dropped"])
    # Same gold prompts in both iterations (the newest model plays against the same data).
    assert [r["id"] for r in read_jsonl(tmp_path / "tiny/iter_1/gold_samples/data.jsonl")] == [
        r["id"] for r in read_jsonl(tmp_path / "tiny/iter_2/gold_samples/data.jsonl")
    ]


def test_pairwise_teacher_reward_counts_inconsistent_orders(tiny_model_dir, tmp_path):
    # The fake server answers "Answer to: <prompt>", never a verdict: every comparison is unparsed.
    with FaultServer() as server:
        cfg = tiny_config(
            tiny_model_dir,
            tmp_path,
            "iterations=1",
            "loop=teacher_reward",
            "teacher_reward.mode=pairwise",
            "sample.n=3",
            f"teacher.endpoint.base_url={server.base_url}",
            *ENDPOINT,
            "eval.enabled=false",
        )
        try:
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        except RuntimeError as e:
            assert "no preference pairs" in str(e)
        assert len(server.bodies) == 6 * 3 * 2  # 6 prompts x 3 candidate pairs x both orders
    comparisons = read_json(tmp_path / "tiny/iter_1/comparisons/metrics.json")
    assert comparisons["comparisons"] == 18 and comparisons["unparsed"] == 18
    pairs = read_json(tmp_path / "tiny/iter_1/pairs_teacher_reward/metrics.json")
    assert pairs["pairs"] == 0 and pairs["dropped"] == {"unparsed": 6}


def test_branches_share_m1_prompts_and_samples(tiny_model_dir, tmp_path):
    with FaultServer() as server:
        cfg = tiny_config(
            tiny_model_dir,
            tmp_path,
            "iterations=1",
            "branches=[self_reward, teacher_demo]",
            f"teacher.endpoint.base_url={server.base_url}",
            *ENDPOINT,
            "eval.judge=initial",
        )
        result = iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert len(server.bodies) == 6  # one teacher answer per shared prompt
    root = tmp_path / "tiny"
    assert set(result["branches"]) == {"self_reward", "teacher_demo"}
    assert len(read_jsonl(root / "iter_1/eval_judgments_M1/data.jsonl")) == 3  # M1 answered and judged once
    assert (root / "iter_1/prompts/data.jsonl").exists() and (root / "iter_1/candidates/data.jsonl").exists()
    for source in ("self_reward", "teacher_demo"):
        assert not (root / source / "iter_1/candidates").exists()  # shared, not recomputed
        assert (
            not (root / source / "iter_1/eval_answers_M1").exists()
            and (root / source / "iter_1/eval_answers_M2").exists()
        )
        assert read_json(root / source / "iter_1/pairs/metrics.json")["by_source"] == {
            source: read_json(root / source / "iter_1/pairs/metrics.json")["pairs"]
        }
        em = read_json(root / source / "iter_1/eval/metrics.json")
        assert em["new"] == "M2" and em["old"] == "M1"
        assert Path(result["branches"][source]["final_model"]) == root / source / "iter_1/dpo/model"

    # The comparison table lists M1 and each branch's M2 with its numbers.
    from rich.console import Console

    from autoalign.summary import comparison_rows, print_comparison

    rows = comparison_rows(root, ["self_reward", "teacher_demo"])
    assert [r["model"] for r in rows] == ["M1 (start)", "M2", "M2"] and [r["source"] for r in rows] == [
        "-",
        "self_reward",
        "teacher_demo",
    ]
    assert rows[2]["pairs"] == read_json(root / "teacher_demo/iter_1/pairs/metrics.json")["pairs"]
    console = Console(record=True, width=200)
    print_comparison(root, ["self_reward", "teacher_demo"], console=console)
    text = console.export_text()
    assert "paradigm comparison" in text and "teacher_demo" in text and "requests to teacher @" in text


def test_in_process_teacher_with_its_own_template(tiny_model_dir, tmp_path):
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "loop=teacher_reward",
        f"teacher.name={tiny_model_dir}",
        "teacher.chat_template=chatml",
        "eval.judge=teacher",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    it = tmp_path / "tiny/iter_1"
    judged = read_json(it / "teacher_judgments/metrics.json")
    assert judged["judge"] == f"teacher {tiny_model_dir}" and judged["judged"] == 24 and "remote" not in judged
    assert read_json(it / "eval/metrics.json")["judge"] == f"teacher {tiny_model_dir}"
    assert read_json(it / "pairs/metrics.json")["by_source"] == {
        "teacher_reward": read_json(it / "pairs_teacher_reward/metrics.json")["pairs"]
    }
