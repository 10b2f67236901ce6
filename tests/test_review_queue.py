"""The human review queue: durable items and labels, JSONL export/import, pairs from answers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from autoalign.io import DataError
from autoalign.review.queue import HumanLabel, ReviewItem, ReviewQueue, human_pairs

PROMPT = [{"role": "user", "content": "Name a prime number."}]


def pairwise_item(i: int = 0) -> ReviewItem:
    return ReviewItem(
        prompt_id=f"p{i}",
        prompt=[{"role": "user", "content": f"Question {i}?"}],
        responses=[f"answer A{i}", f"answer B{i}"],
        critique="B skips the question.",
        scores=[4.0, 2.0],
        reason="order_inconsistent",
        signals={"order_flip": 1.0, "entropy": 0.9},
    )


def test_items_are_queued_once_and_survive_reopening(tmp_path):
    path = tmp_path / "review.sqlite"
    with ReviewQueue(path) as queue:
        assert queue.add([pairwise_item(0), pairwise_item(1)]) == 2
        assert queue.add([pairwise_item(1), pairwise_item(2)]) == 1  # the same content is queued once
    with ReviewQueue(path) as queue:
        items = queue.items()
        assert [item.prompt_id for item in items] == ["p0", "p1", "p2"]
        assert items[0] == pairwise_item(0)  # every field comes back as it went in
        assert queue.counts() == {"items": 3, "answered": 0, "pending": 3}


def test_answers_replace_the_same_persons_earlier_answer(tmp_path):
    with ReviewQueue(tmp_path / "review.sqlite") as queue:
        queue.add([pairwise_item(0), pairwise_item(1)])
        item_id = pairwise_item(0).item_id
        queue.answer(HumanLabel(item_id, "preference", "B", who="ana"))
        queue.answer(HumanLabel(item_id, "preference", "A", who="ana", note="misread at first"))
        queue.answer(HumanLabel(item_id, "preference", "tie", who="ben"))
        labels = queue.labels()
        assert sorted((label.who, label.value, label.note) for label in labels) == [
            ("ana", "A", "misread at first"),
            ("ben", "tie", ""),
        ]
        assert all(label.at for label in labels)  # when it was given
        assert queue.counts() == {"items": 2, "answered": 1, "pending": 1}
        assert [item.prompt_id for item in queue.items(pending_only=True)] == ["p1"]
        with pytest.raises(KeyError, match="no review item nope"):
            queue.answer(HumanLabel("nope", "skip", None, who="ana"))


@pytest.mark.parametrize(
    "kind, value, message",
    [
        ("preference", "C", "a preference must be one of A, B, tie"),
        ("score", "high", "a score must be a number"),
        ("edit", "better text", "an edit must be"),
        ("vote", 1, "kind must be one of"),
    ],
)
def test_invalid_answers_are_refused(kind, value, message):
    with pytest.raises(ValueError, match=message):
        HumanLabel("x", kind, value, who="ana")


def test_pairs_from_preferences_edits_and_scores(tmp_path):
    with ReviewQueue(tmp_path / "review.sqlite") as queue:
        a, b, tie = pairwise_item(0), pairwise_item(1), pairwise_item(2)
        edited = ReviewItem("p3", PROMPT, ["9", "4"])
        low = ReviewItem("p4", PROMPT, ["1 is prime"])
        high = ReviewItem("p4", PROMPT, ["7"])
        queue.add([a, b, tie, edited, low, high])
        queue.answer(HumanLabel(a.item_id, "preference", "A", who="ana"))
        queue.answer(HumanLabel(b.item_id, "preference", "B", who="ana"))
        queue.answer(HumanLabel(tie.item_id, "preference", "tie", who="ana"))
        queue.answer(HumanLabel(edited.item_id, "edit", {"response": 0, "text": "7"}, who="ana"))
        queue.answer(HumanLabel(low.item_id, "score", 1, who="ana"))
        queue.answer(HumanLabel(high.item_id, "score", 5, who="ana"))
        pairs = {(p.prompt_id, p.chosen, p.rejected) for p in human_pairs(queue, weight=2.0)}
        assert pairs == {
            ("p0", "answer A0", "answer B0"),
            ("p1", "answer B1", "answer A1"),
            ("p3", "7", "9"),
            ("p4", "7", "1 is prime"),
        }
        made = human_pairs(queue, weight=2.0)
        assert {p.source for p in made} == {"human"} and {p.weight for p in made} == {2.0}
        scored = next(p for p in made if p.prompt_id == "p4")
        assert (scored.chosen_score, scored.rejected_score) == (5.0, 1.0)


def test_export_then_import_labels_made_elsewhere(tmp_path):
    with ReviewQueue(tmp_path / "review.sqlite") as queue:
        queue.add([pairwise_item(0), pairwise_item(1)])
        assert queue.export_items(tmp_path / "items.jsonl") == 2
        exported = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
        assert exported[0]["item_id"] == pairwise_item(0).item_id and exported[0]["critique"] == "B skips the question."
        labels = tmp_path / "labels.jsonl"
        labels.write_text(
            json.dumps({"item_id": exported[0]["item_id"], "kind": "preference", "value": "B", "who": "cy"})
            + "\n"
            + json.dumps({"item_id": exported[1]["item_id"], "kind": "score", "value": 3.5, "note": "ok"})
            + "\n"
        )
        assert queue.import_labels(labels) == 2
        assert sorted((label.who, label.value) for label in queue.labels()) == [("cy", "B"), ("import", 3.5)]
        assert queue.export_items(tmp_path / "left.jsonl") == 0  # nothing pending any more


@pytest.mark.parametrize(
    "row, message",
    [
        ({"kind": "preference", "value": "A"}, "labels.jsonl:2: missing field 'item_id'"),
        ({"item_id": "unknown", "kind": "preference", "value": "A"}, "labels.jsonl:2: field 'item_id': no review item"),
        ({"item_id": "ID", "kind": "preference", "value": "maybe"}, "labels.jsonl:2: field 'value': a preference"),
        ({"item_id": "ID", "kind": "thumbs", "value": 1}, "labels.jsonl:2: field 'kind': kind must be one of"),
    ],
)
def test_a_bad_label_file_names_line_and_field_and_stores_nothing(tmp_path, row, message):
    with ReviewQueue(tmp_path / "review.sqlite") as queue:
        queue.add([pairwise_item(0)])
        item_id = pairwise_item(0).item_id
        good = {"item_id": item_id, "kind": "preference", "value": "A"}
        row = {k: (item_id if v == "ID" else v) for k, v in row.items()}
        labels = tmp_path / "labels.jsonl"
        labels.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
        with pytest.raises(DataError, match=message):
            queue.import_labels(labels)
        assert queue.labels() == []  # the good first line was not stored either


WRITER = textwrap.dedent(
    """
    import sys
    from autoalign.review.queue import HumanLabel, ReviewItem, ReviewQueue
    queue = ReviewQueue(sys.argv[1])
    items = [ReviewItem(f"p{i}", [{"role": "user", "content": f"q{i}"}], [f"a{i}", f"b{i}"]) for i in range(400)]
    queue.add(items)
    for item in items:
        queue.answer(HumanLabel(item.item_id, "preference", "A", who="ana"))
        print(item.prompt_id, flush=True)  # after the commit: this label is stored
    """
)


def test_a_writer_killed_mid_stream_loses_no_acknowledged_label_and_duplicates_none(tmp_path):
    path = tmp_path / "review.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    acknowledged = []
    for line in writer.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 60:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait()
    acknowledged += [line.strip() for line in writer.stdout]  # lines already in the pipe
    assert 60 <= len(acknowledged) < 400, "the writer must die mid-stream"

    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with ReviewQueue(path) as queue:
        stored = {label.item_id for label in queue.labels()}
        by_prompt = {item.item_id: item.prompt_id for item in queue.items()}
        assert len(by_prompt) == 400  # the items went in as one transaction
        labelled = {by_prompt[i] for i in stored}
        assert set(acknowledged) <= labelled  # nothing acknowledged was lost
        assert len(labelled) <= len(acknowledged) + 1  # at most the label being written when killed
        assert len(queue.labels()) == len(stored)  # one label per item and person: no duplicates
        # Replaying the whole stream after the crash (a restarted writer) changes nothing stored twice.
        for item in queue.items():
            queue.answer(HumanLabel(item.item_id, "preference", "A", who="ana"))
        assert len(queue.labels()) == 400 and queue.counts()["pending"] == 0


def test_threads_answering_at_once_store_every_answer(tmp_path):
    """The web app answers from worker threads over one connection: transactions must not interleave."""
    from concurrent.futures import ThreadPoolExecutor

    with ReviewQueue(tmp_path / "review.sqlite") as queue:
        items = [ReviewItem(f"p{i}", [{"role": "user", "content": f"q{i}"}], [f"a{i}", f"b{i}"]) for i in range(200)]
        queue.add(items)

        def answer(item: ReviewItem) -> dict[str, int]:
            queue.answer(HumanLabel(item.item_id, "preference", "B", who="ana"))
            return queue.counts()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(answer, items))
        assert queue.counts() == {"items": 200, "answered": 200, "pending": 0}
        assert len(queue.labels()) == 200
