"""The HTML run report: built from a real (tiny-model) run with every evaluation on, written by
the CLI, and opened in headless Chromium, which must render its tables and images without a
single console or page error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoalign.cli import app
from autoalign.loops import iterate
from test_loop_tiny import FIX, make_verifier, tiny_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags keep Chromium off the network (this machine has none beyond package registries).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("report_runs")
    cfg = tiny_config(
        tiny_model_dir,
        runs,
        "eval.ifeval_prompts=3",
        "eval.ifeval_sampling.max_new_tokens=8",
        f"eval.reward_data={FIX / 'oasst_small.jsonl'}",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    return runs / "tiny"


def test_report_command_writes_a_self_contained_page(run_dir):
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # training curves, histogram, length drift, win rates, IFEval
    assert "Example preference pairs" in html and "Collapse and drift monitors" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from anywhere
    assert "<script" not in html


def test_report_on_a_non_run_directory_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not an autoalign run directory" in result.output


def test_report_renders_in_headless_chromium(run_dir):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (apt-get install chromium) for the report test")
        pytest.skip("no /usr/bin/chromium on this machine")
    from playwright.sync_api import sync_playwright

    CliRunner().invoke(app, ["report", str(run_dir)])
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            )
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.goto((run_dir / "report.html").as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            metric_rows = page.locator("table.metrics tr").count()
            monitor_rows = page.locator("table.monitors tr").count()
            pair_rows = page.locator("table.pairs tr").count()
            config = page.locator("#config").inner_text()
            heading = page.locator("h1").inner_text()
            page.screenshot(path=str(run_dir / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert len(images) >= 4
    for alt, complete, width, height in images:
        assert complete and width > 100 and height > 100, alt  # decoded, not a broken-image icon
    assert metric_rows > 10 and monitor_rows >= 3 and pair_rows >= 2
    assert "dpo:" in config and "tiny" in heading


def test_report_renders_a_model_whose_every_answer_failed(tmp_path):
    import json

    from autoalign.report import write_report

    run = tmp_path / "run"
    (run / "iter_1/eval_answers_M2").mkdir(parents=True)
    failed = {"text": "", "num_tokens": 0, "finish_reason": "error", "error": "timeout"}
    (run / "iter_1/eval_answers_M2/data.jsonl").write_text(json.dumps({"id": "a", "candidates": [failed]}) + "\n")
    (run / "iter_1/eval_answers_M2/metrics.json").write_text(json.dumps({"model": "M2"}))
    manifest = {"stages": {"iter_1/eval_answers_M2": {"key": "k", "kind": "answers"}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(run).read_text()
    assert "<td>M2 held-out answers</td><td>0</td><td>-</td><td>-</td>" in html


def test_one_line_verdict_reads_the_last_iteration_and_its_interval(tmp_path):
    from autoalign.io import write_json
    from autoalign.summary import verdict

    assert verdict(tmp_path) == "no evaluation finished yet"
    stages = {"iter_1/eval": "eval", "iter_2/eval": "eval", "iter_2/eval_h2h": "head_to_head"}
    stages |= {"iter_2/ifeval_M3": "ifeval", "iter_1/ifeval_M2": "ifeval"}
    manifest = {"stages": {rel: {"key": rel, "kind": kind} for rel, kind in stages.items()}}
    write_json(tmp_path / "manifest.json", {"stages": {rel: manifest["stages"][rel] for rel in list(stages)[:2]}})
    for t, (new, old) in ((1, ("M2", "M1")), (2, ("M3", "M2"))):
        write_json(
            tmp_path / f"iter_{t}/eval/metrics.json",
            {"new": new, "old": old, "new_mean_score": 2.5, "old_mean_score": 2.0},
        )
    h2h = {"wins": 6, "ties": 1, "losses": 1, "win_rate": 70.0, "standard_error": 5.0}
    write_json(tmp_path / "iter_2/eval_h2h/metrics.json", h2h)
    write_json(tmp_path / "iter_2/ifeval_M3/metrics.json", {"model": "M3", "prompt_loose": 0.25})
    # made when M2 was the newer model
    write_json(tmp_path / "iter_1/ifeval_M2/metrics.json", {"model": "M2", "prompt_loose": 0.125})
    assert verdict(tmp_path) == "M3 vs M2: judge score 2.50 vs 2.00"  # only what the manifest lists counts
    write_json(tmp_path / "manifest.json", manifest)
    line = verdict(tmp_path)
    assert line == (
        "M3 vs M2: M3 better head to head (win rate 70.0 ± 5.0%, W/T/L 6/1/1); judge score 2.50 vs 2.00; "
        "IFEval prompt loose 25.0% vs 12.5%"
    )
    write_json(tmp_path / "iter_2/eval_h2h/metrics.json", {**h2h, "win_rate": 54.0, "standard_error": 3.0})
    assert verdict(tmp_path).startswith("M3 vs M2: no clear difference head to head (win rate 54.0 ± 3.0%")
