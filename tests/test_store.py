from autoalign.io import read_partial_jsonl, write_jsonl
from autoalign.store import RunStore


def test_stage_keys_chain_and_done(tmp_path):
    store = RunStore(tmp_path)
    a = store.stage(1, "candidates", {"n": 4}, ["model-key"])
    assert not a.done()
    a.begin()
    a.finish([{"id": "x"}], {"count": 1})
    assert store.stage(1, "candidates", {"n": 4}, ["model-key"]).done()
    assert not store.stage(1, "candidates", {"n": 8}, ["model-key"]).done()
    assert not store.stage(1, "candidates", {"n": 4}, ["other-model"]).done()
    assert store.manifest()["stages"]["iter_1/candidates"]["rows"] == 1


def test_begin_clears_stale_outputs_but_keeps_same_key_partial(tmp_path):
    store = RunStore(tmp_path)
    old = store.stage(1, "judgments", {"v": 1}, [])
    old.begin()
    old.finish([{"id": "a"}], {})
    new = store.stage(1, "judgments", {"v": 2}, [])
    (new.dir / "partial-other.jsonl").write_text('{"id": "stale"}\n')
    new.partial_path.write_text('{"id": "kept"}\n')
    new.begin()
    assert not new.data_path.exists() and not (new.dir / "partial-other.jsonl").exists()
    assert read_partial_jsonl(new.partial_path) == [{"id": "kept"}]


def test_map_items_skips_finished_and_tolerates_torn_line(tmp_path):
    store = RunStore(tmp_path)
    stage = store.stage(1, "s", {}, [])
    stage.begin()
    stage.partial_path.write_text('{"id": "a", "v": 1}\n{"id": "b", "v"')  # crash mid-write of b
    seen = []

    def process(ids):
        seen.extend(ids)
        return [{"id": i, "v": 2} for i in ids]

    rows = stage.map_items(["a", "b", "c"], process, chunk_size=2, desc="test")
    assert seen == ["b", "c"]
    assert rows == [{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "c", "v": 2}]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_training_scratch_survives_restart_and_goes_on_finish(tmp_path):
    store = RunStore(tmp_path)
    stage = store.stage(1, "dpo", {"beta": 0.1}, ["m"])
    stage.begin()
    reference = stage.resumable_file("reference_logps.json")
    assert reference.name == f"reference_logps-{stage.key}.json"
    reference.write_text("[[0.0, 0.0]]")
    stage.train_state_path.mkdir()
    (stage.train_state_path / "progress.json").write_text("{}")
    (stage.dir / "model").mkdir()  # a stale half-saved output from the crashed attempt
    stage.begin()  # the restart
    assert reference.exists() and stage.train_state_path.exists() and not (stage.dir / "model").exists()
    stage.finish([], {})
    assert reference.exists() and not stage.train_state_path.exists()
