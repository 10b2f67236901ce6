import json

import pytest

from autoalign.io import append_record, read_records, write_jsonl
from autoalign.store import RunStore, StageFailedError


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
    (new.dir / "partial-other.jsonl").write_text('{"ids": ["stale"], "rows": [{"id": "stale"}]}\n')
    append_record(new.partial_path, {"ids": ["kept"], "rows": [{"id": "kept"}]})
    new.begin()
    assert not new.data_path.exists() and not (new.dir / "partial-other.jsonl").exists()
    assert read_records(new.partial_path) == [{"ids": ["kept"], "rows": [{"id": "kept"}]}]


def _record(ids, v):
    return (json.dumps({"ids": ids, "rows": [{"id": i, "v": v} for i in ids]}, ensure_ascii=False) + "\n").encode()


def _process(seen):
    def process(ids):
        seen.append(list(ids))
        return [{"id": i, "v": 2} for i in ids]

    return process


def test_map_items_redoes_the_whole_torn_chunk_with_the_same_inputs(tmp_path):
    stage = RunStore(tmp_path).stage(1, "s", {}, [])
    stage.begin()
    torn = _record(["c", "d"], 1)
    stage.partial_path.write_bytes(_record(["a", "b"], 1) + torn[: len(torn) // 2])  # killed mid-write of chunk 2
    seen = []
    rows = stage.map_items(["a", "b", "c", "d", "e"], _process(seen), chunk_size=2, desc="test")
    assert seen == [["c", "d"], ["e"]]  # the same chunks an uninterrupted run processes
    assert [r["v"] for r in rows] == [1, 1, 2, 2, 2]
    # The torn tail was cut off before appending: every line of the file is a whole record.
    assert [r["ids"] for r in read_records(stage.partial_path)] == [["a", "b"], ["c", "d"], ["e"]]


def test_partial_file_cut_inside_a_multibyte_character_resumes(tmp_path):
    stage = RunStore(tmp_path).stage(1, "s", {}, [])
    stage.begin()
    first = (json.dumps({"ids": ["a"], "rows": [{"id": "a", "v": "é"}]}, ensure_ascii=False) + "\n").encode()
    second = (json.dumps({"ids": ["b"], "rows": [{"id": "b", "v": "日本"}]}, ensure_ascii=False) + "\n").encode()
    cut = second.index("日".encode()) + 1  # inside the 3-byte character
    stage.partial_path.write_bytes(first + second[:cut])
    seen = []
    rows = stage.map_items(["a", "b"], _process(seen), chunk_size=1, desc="test")
    assert seen == [["b"]] and rows == [{"id": "a", "v": "é"}, {"id": "b", "v": 2}]


def test_a_second_crash_never_glues_onto_a_torn_line(tmp_path):
    path = tmp_path / "partial.jsonl"
    path.write_bytes(_record(["a"], 1) + b'{"ids": ["b"], "ro')
    assert [r["ids"] for r in read_records(path)] == [["a"]]
    append_record(path, {"ids": ["b"], "rows": []})
    assert [r["ids"] for r in read_records(path)] == [["a"], ["b"]]


def test_failed_items_are_retried_on_resume_and_all_failed_is_not_recorded(tmp_path):
    store = RunStore(tmp_path)
    stage = store.stage(1, "s", {}, [])
    stage.begin()
    error_of = lambda row: row.get("error")
    down = lambda ids: [{"id": i, "error": "connection refused"} for i in ids]
    with pytest.raises(StageFailedError, match="all 3 items failed.*connection refused"):
        stage.map_items(["a", "b", "c"], down, chunk_size=2, desc="test", error_of=error_of)
    assert not stage.done()
    seen = []
    rows = stage.map_items(["a", "b", "c"], _process(seen), chunk_size=2, desc="test", error_of=error_of)
    assert seen == [["a", "b"], ["c"]] and all(r["v"] == 2 for r in rows)


def test_some_failed_items_are_recorded_and_retried_on_request(tmp_path):
    error_of = lambda row: row.get("error")
    half = lambda ids: [{"id": i, "error": "http_400"} if i == "b" else {"id": i, "v": 1} for i in ids]
    stage = RunStore(tmp_path).stage(1, "s", {}, [])
    stage.begin()
    rows = stage.map_items(["a", "b", "c"], half, chunk_size=2, desc="test", error_of=error_of)
    stage.finish(rows, {}, failed=1)
    assert RunStore(tmp_path).stage(1, "s", {}, []).done()  # a plain re-run keeps the recorded stage
    assert RunStore(tmp_path).manifest()["stages"]["iter_1/s"]["failed"] == 1
    retry = RunStore(tmp_path, retry_failed=True).stage(1, "s", {}, [])
    assert not retry.done()
    retry.begin()
    seen = []
    rows = retry.map_items(["a", "b", "c"], _process(seen), chunk_size=2, desc="test", error_of=error_of)
    assert seen == [["b"]] and [r["v"] for r in rows] == [1, 2, 1]
    retry.finish(rows, {}, failed=0)
    assert RunStore(tmp_path, retry_failed=True).stage(1, "s", {}, []).done()


def test_chunks_in_flight_overlap_are_recorded_as_they_finish_and_returned_in_id_order(tmp_path):
    """Two chunks at once: the second starts before the first ends (the first waits for it); each
    chunk is recorded once, whatever order they finish in; the rows come back in id order."""
    import threading

    second_started = threading.Event()

    def process(ids):
        if ids == ["a", "b"]:
            assert second_started.wait(timeout=10)  # would time out if chunks ran one after another
        elif ids == ["c", "d"]:
            second_started.set()
        return [{"id": i, "v": i.upper()} for i in ids]

    stage = RunStore(tmp_path).stage(1, "s", {}, [])
    stage.begin()
    rows = stage.map_items(["a", "b", "c", "d", "e"], process, chunk_size=2, desc="test", in_flight=2)
    assert [r["v"] for r in rows] == ["A", "B", "C", "D", "E"]
    assert sorted(r["ids"] for r in read_records(stage.partial_path)) == [["a", "b"], ["c", "d"], ["e"]]


def test_a_failing_chunk_in_flight_keeps_the_finished_ones(tmp_path):
    import threading
    import time

    b_failed = threading.Event()

    def process(ids):
        if ids == ["b"]:
            b_failed.set()
            raise ConnectionError("server gone")
        if ids == ["a"]:  # still running when "b" fails
            assert b_failed.wait(timeout=10)
            time.sleep(0.05)
        return [{"id": i, "v": 1} for i in ids]

    stage = RunStore(tmp_path).stage(1, "s", {}, [])
    stage.begin()
    with pytest.raises(ConnectionError, match="server gone"):
        stage.map_items(["a", "b", "c", "d"], process, chunk_size=1, desc="test", in_flight=2)
    assert [r["ids"] for r in read_records(stage.partial_path)] == [["a"]]  # kept; nothing started after the error
    seen = []
    rows = stage.map_items(["a", "b", "c", "d"], _process(seen), chunk_size=1, desc="test", in_flight=2)
    assert sorted(seen) == [["b"], ["c"], ["d"]] and [r["v"] for r in rows] == [1, 2, 2, 2]


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


def test_editing_a_template_changes_the_key_of_the_stages_that_send_it(tmp_path, monkeypatch):
    import shutil

    from autoalign import prompts

    store = RunStore(tmp_path)
    before = store.stage(1, "judgments", {}, ["m"], templates=("judge_rubric",)).key
    untouched = store.stage(1, "candidates", {}, ["m"], templates=("answer_control",)).key
    edited = tmp_path / "prompts"
    shutil.copytree(prompts.PROMPTS_DIR, edited)
    (edited / "judge_rubric.txt").write_text((edited / "judge_rubric.txt").read_text() + "\nBe strict.\n")
    monkeypatch.setattr(prompts, "PROMPTS_DIR", edited)
    prompts.load_prompt.cache_clear()
    try:
        assert store.stage(1, "judgments", {}, ["m"], templates=("judge_rubric",)).key != before
        assert store.stage(1, "candidates", {}, ["m"], templates=("answer_control",)).key == untouched
    finally:
        monkeypatch.undo()
        prompts.load_prompt.cache_clear()


def test_written_files_and_checkpoint_dirs_get_the_usual_modes(tmp_path):
    import os
    import stat

    from autoalign.io import private_sibling_dir

    umask = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
        built = private_sibling_dir(tmp_path / "model")
        assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o644
        assert stat.S_IMODE(built.stat().st_mode) == 0o755 and built.name.startswith(".model.")
    finally:
        os.umask(umask)


def test_readers_find_stages_by_the_kind_the_manifest_records(tmp_path):
    from autoalign.store import recorded_stages

    store = RunStore(tmp_path)
    store.stage(1, "critic_samples", {}, ["a"], kind="samples").ensure(lambda: ([{"id": "x"}], {"model": "M1"}))
    store.stage(1, "dpo", {}, ["b"]).ensure(lambda: (None, {"final_loss": 0.5}))
    store.stage(2, "candidates", {}, ["c"], kind="samples").ensure(lambda: ([], {"model": "M2"}))
    assert [(r.iteration, r.name) for r in recorded_stages(tmp_path, kind="samples")] == [
        (1, "critic_samples"),
        (2, "candidates"),
    ]
    assert [r.kind for r in recorded_stages(tmp_path, 1)] == ["samples", "dpo"]
    assert recorded_stages(tmp_path, 1, "samples")[0].rows() == [{"id": "x"}]
    assert recorded_stages(tmp_path, 1, "dpo")[0].metrics() == {"final_loss": 0.5}
    # A manifest written before kinds were recorded: the kind comes from the stage's name.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["stages"].values():
        del entry["kind"]
    manifest["stages"]["iter_2/ifeval_answers_M2"] = {"key": "k"}
    (tmp_path / "iter_2/ifeval_answers_M2").mkdir()
    (tmp_path / "iter_2/ifeval_answers_M2/metrics.json").write_text("{}")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    kinds = {r.name: r.kind for r in recorded_stages(tmp_path)}
    assert kinds == {
        "critic_samples": "critic_samples",
        "dpo": "dpo",
        "candidates": "samples",
        "ifeval_answers_M2": "ifeval_answers",
    }
