"""The constitutional loop end to end on the tiny model: every sampled answer critiqued against a
drawn principle and revised, revised > original pairs, DPO; a bad constitution fails first."""

from __future__ import annotations

import pytest
from fault_server import FaultServer
from test_loop_tiny import make_verifier, tiny_config
from test_teacher_loops import ENDPOINT

from autoalign.config import ConfigError
from autoalign.inference.constitutional import draw_principle, load_constitution
from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate

LOOP = ["iterations=1", "loop=constitutional", "sample.n=1", "constitution.sampling.max_new_tokens=12"]


def test_constitutional_loop_revises_every_answer_and_prefers_the_revision(tiny_model_dir, tmp_path):
    # The tiny model's answers are critiqued and revised by a teacher behind an OpenAI-compatible
    # server (its revisions end; the random tiny model's own run to the token limit and are dropped).
    with FaultServer([]) as server:
        cfg = tiny_config(
            tiny_model_dir, tmp_path, *LOOP, "eval.enabled=false", "constitution.reviser=teacher",
            f"teacher.endpoint.base_url={server.base_url}", *ENDPOINT,
        )  # fmt: skip
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        bodies = list(server.bodies)
    run = tmp_path / "tiny/iter_1"
    samples = {r["id"]: r["candidates"][0] for r in read_jsonl(run / "candidates/data.jsonl")}
    revisions = read_jsonl(run / "revisions/data.jsonl")
    usable = [pid for pid, c in samples.items() if c["finish_reason"] != "error" and c["text"].strip()]
    assert sorted(r["id"] for r in revisions) == sorted(usable)
    principles = load_constitution("builtin:constitution.yaml")
    prompts = {r["id"]: r for r in read_jsonl(run / "prompts/data.jsonl")}
    for row in revisions:
        assert row["original"] == samples[row["id"]]["text"]
        assert row["principle"] == draw_principle(principles, cfg.seed, prompts[row["id"]]["messages"]).name
        assert row["messages"][-1] == {"role": "assistant", "content": row["revised"]}  # an SFT row as it is
    critiques = [b for b in bodies if b["messages"][-1]["content"].endswith("Write only the critique.")]
    assert len(critiques) == len(revisions) and len(bodies) == 2 * len(revisions)  # a critique, then a revision
    for row in revisions:
        assert row["critique"].startswith("Answer to: Here is a request")  # the teacher's reply to the critique prompt
        assert row["revised"].startswith("Answer to: Here is a request") and row["finish_reason"] == "stop"
    metrics = read_json(run / "revisions/metrics.json")
    assert metrics["revisions"] == len(revisions) and sum(metrics["by_principle"].values()) == len(revisions)
    pairs = read_jsonl(run / "pairs_constitutional/data.jsonl")
    by_id = {r["id"]: r for r in revisions}
    for pair in pairs:
        row = by_id[pair["prompt_id"]]
        assert pair["chosen"][0]["content"] == row["revised"] and pair["rejected"][0]["content"] == row["original"]
    dropped = read_json(run / "pairs_constitutional/metrics.json")["dropped"]
    assert len(pairs) + sum(dropped.values()) == len(prompts)
    assert len(pairs) == len(revisions) > 0 and (run / "dpo/model/config.json").exists()


def test_a_bad_constitution_fails_before_the_run_directory_exists(tiny_model_dir, tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("principles:\n  - name: a\n")
    cfg = tiny_config(tiny_model_dir, tmp_path, *LOOP, f"constitution.file={bad}")
    with pytest.raises(ConfigError, match=r"constitution.file: .*rules.yaml:2: principles\[0\]: field 'critique'"):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert not (tmp_path / "tiny").exists()
