"""The review web app: token, JSON API, and a person labelling in headless Chromium."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from autoalign.cli import app as cli
from autoalign.engines.server import free_port
from autoalign.review.app import make_app
from autoalign.review.queue import ReviewItem, ReviewQueue
from test_report import CHROMIUM, CHROMIUM_ARGS

TOKEN = "t0ken-for-tests"
HOSTILE = '<script>window.pwned = 1</script><b onmouseover="x">bold?</b>'


def queue_with_items(path: Path) -> tuple[ReviewQueue, list[ReviewItem]]:
    items = [
        ReviewItem(
            "p0",
            [{"role": "user", "content": "Say hello politely."}],
            [HOSTILE, "Hello! How can I help?"],
            critique="A is markup, not a greeting.",
            scores=[1.0, 4.0],
            reason="order_inconsistent",
            signals={"order_flip": 1.0, "entropy": 0.82},
        ),
        ReviewItem("p1", [{"role": "user", "content": "2+2?"}], ["4", "5"], reason="samples_disagree"),
        ReviewItem("p2", [{"role": "user", "content": "Name a colour."}], ["Blue."], scores=[3.0]),
    ]
    queue = ReviewQueue(path)
    queue.add(items)
    return queue, items


def test_the_api_needs_the_token_and_stores_answers(tmp_path):
    queue, items = queue_with_items(tmp_path / "review.sqlite")
    client = TestClient(make_app(queue, TOKEN, who="ana"))
    assert client.get("/api/counts").status_code == 401
    assert client.get("/api/counts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/counts", headers=auth).json() == {"items": 3, "answered": 0, "pending": 3}
    assert [row["prompt_id"] for row in client.get("/api/items", headers=auth).json()] == ["p0", "p1", "p2"]

    stored = client.post(
        "/api/labels", headers=auth, json={"item_id": items[1].item_id, "kind": "preference", "value": "A"}
    )
    assert stored.json() == {"items": 3, "answered": 1, "pending": 2}
    assert (queue.labels()[0].who, queue.labels()[0].value) == ("ana", "A")
    bad = client.post(
        "/api/labels", headers=auth, json={"item_id": items[1].item_id, "kind": "preference", "value": "C"}
    )
    assert bad.status_code == 422 and "a preference must be one of A, B, tie" in bad.text
    missing = client.post("/api/labels", headers=auth, json={"item_id": "nope", "kind": "skip"})
    assert missing.status_code == 404

    visit = client.get(f"/?token={TOKEN}", follow_redirects=False)  # the link printed at start
    assert visit.status_code == 303 and visit.headers["location"].endswith("/")
    assert "httponly" in visit.headers["set-cookie"].lower()
    page = client.get("/")  # the cookie now carries the token
    assert page.status_code == 200 and "&lt;script&gt;window.pwned" in page.text and HOSTILE not in page.text
    queue.close()


def test_a_person_labels_in_chromium_and_the_labels_persist(tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (apt-get install chromium) for the review UI test")
        pytest.skip("no /usr/bin/chromium on this machine")
    import uvicorn
    from playwright.sync_api import sync_playwright

    queue, items = queue_with_items(tmp_path / "review.sqlite")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(queue, TOKEN, who="ana"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                stranger = browser.new_page()
                assert stranger.goto(f"{base}/").status == 401  # no token, no page
                assert stranger.goto(f"{base}/api/items").status == 401

                page = browser.new_page()
                page.goto(f"{base}/?token={TOKEN}")
                assert "token" not in page.url  # moved into a cookie
                assert page.locator("#progress").inner_text().startswith("0 of 3 answered")
                assert page.locator("#response-0").inner_text() == HOSTILE  # shown as text
                assert page.evaluate("window.pwned") is None and page.locator("b").count() == 0
                assert page.locator("#critique").inner_text() == "A is markup, not a greeting."
                assert "order_flip" in page.locator("table.signals").inner_text()

                with page.expect_navigation():
                    page.keyboard.press("b")  # B is better
                assert page.locator("#progress").inner_text().startswith("1 of 3 answered")
                with page.expect_navigation():
                    page.keyboard.press("t")  # the second item: a tie
                page.fill("#score", "4.5")
                page.fill("#note", "fine answer")
                with page.expect_navigation():
                    page.click("#send-score")
                page.reload()
                assert page.locator("#done").inner_text() == "Nothing left to review."
                assert page.locator("#progress").inner_text().startswith("3 of 3 answered")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    queue.close()
    with ReviewQueue(tmp_path / "review.sqlite") as reopened:  # stored on disk, not in the page
        answers = {label.item_id: (label.kind, label.value, label.note, label.who) for label in reopened.labels()}
    assert answers == {
        items[0].item_id: ("preference", "B", "", "ana"),
        items[1].item_id: ("preference", "tie", "", "ana"),
        items[2].item_id: ("score", 4.5, "fine answer", "ana"),
    }


def test_review_without_a_queue_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["review", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no review queue (review.sqlite)" in result.output


def test_the_queue_moves_as_jsonl_through_the_command_line(tmp_path):
    queue, items = queue_with_items(tmp_path / "review.sqlite")
    queue.close()
    runner = CliRunner()
    exported = runner.invoke(cli, ["review", str(tmp_path), "--export-items", str(tmp_path / "items.jsonl")])
    assert exported.exit_code == 0 and "wrote 3 pending items" in exported.output
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"item_id": rows[1]["item_id"], "kind": "preference", "value": "A"}) + "\n")
    imported = runner.invoke(cli, ["review", str(tmp_path), "--import-labels", str(labels), "--who", "dee"])
    assert imported.exit_code == 0 and "stored 1 answers" in imported.output
    back = runner.invoke(cli, ["review", str(tmp_path), "--export-labels", str(tmp_path / "out.jsonl")])
    assert back.exit_code == 0
    (answer,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (answer["item_id"], answer["value"], answer["who"]) == (items[1].item_id, "A", "dee")
    labels.write_text('{"item_id": "x"}\n')
    refused = runner.invoke(cli, ["review", str(tmp_path), "--import-labels", str(labels)])
    assert refused.exit_code == 2 and "labels.jsonl:1: field 'item_id': no review item x" in refused.output
