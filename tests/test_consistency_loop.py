"""The self-consistency loop end to end: the pairs stage holds exactly the majority-over-minority
pairs of the sampled answers, then DPO trains on them."""

from __future__ import annotations

from autoalign import registry
from autoalign.inference.self_consistency import consensus
from autoalign.io import read_json, read_jsonl
from autoalign.loops import iterate
from test_loop_tiny import make_verifier, tiny_config


def test_self_consistency_loop_prefers_the_majority(tiny_model_dir, tmp_path, monkeypatch):
    # The toy backend's answers share the prompt's first words and differ in a few random ones,
    # so at ROUGE-L 0.8 some agree and some do not.
    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    overrides = ["iterations=1", "loop=self_consistency", "model.backend=toy_echo", "sample.n=6"]
    overrides += ["consistency.threshold=0.8", "consistency.min_confidence=0.3", "eval.enabled=false"]
    cfg = tiny_config(tiny_model_dir, tmp_path, *overrides)
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny/iter_1"
    expected = []
    for row in read_jsonl(run / "candidates/data.jsonl"):
        texts = [c["text"] for c in row["candidates"]]
        vote = consensus(texts, "rouge", 0.8)
        if vote.confidence < 1.0:
            expected += [(row["id"], texts[c], texts[r]) for c, r in vote.preference_pairs(0.3)]
    pairs = read_jsonl(run / "pairs_self_consistency/data.jsonl")
    assert [(p["prompt_id"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == expected
    assert len(expected) > 0 and read_json(run / "pairs_self_consistency/metrics.json")["mean_confidence"] > 0
    assert (run / "dpo/model/config.json").exists()


def test_new_sources_mix_with_weights(tiny_model_dir, tmp_path, monkeypatch):
    """loop=mixed with self_consistency and constitutional: one DPO set holding each source's own
    pairs, every pair carrying its source's weight."""
    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    overrides = ["iterations=1", "loop=mixed", "mix={self_consistency: 1.0, constitutional: 0.5}"]
    overrides += ["model.backend=toy_echo", "sample.n=6", "consistency.threshold=0.8"]
    overrides += ["consistency.min_confidence=0.3", "eval.enabled=false"]
    cfg = tiny_config(tiny_model_dir, tmp_path, *overrides)
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    run = tmp_path / "tiny/iter_1"
    own = {s: read_jsonl(run / f"pairs_{s}/data.jsonl") for s in ("self_consistency", "constitutional")}
    assert own["self_consistency"] and own["constitutional"]
    mixed = read_jsonl(run / "pairs/data.jsonl")
    assert len(mixed) == sum(len(p) for p in own.values())
    for source, weight in (("self_consistency", 1.0), ("constitutional", 0.5)):
        mine = [p for p in mixed if p["source"] == source]
        assert [p["chosen"] for p in mine] == [p["chosen"] for p in own[source]]
        assert all(p["weight"] == weight * q["weight"] for p, q in zip(mine, own[source]))
    assert read_json(run / "pairs/metrics.json")["by_source"] == {s: len(p) for s, p in own.items()}
    assert (run / "dpo/model/config.json").exists()
