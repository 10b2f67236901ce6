"""The command line: errors before any model loads, and generate/judge on a local model."""

import json

from typer.testing import CliRunner

from autoalign.cli import app
from autoalign.io import read_jsonl

runner = CliRunner()


def test_run_with_unknown_key_fails_fast_naming_it(tmp_path):
    result = runner.invoke(app, ["run", "recipes/quickstart.yaml", "dpo.betta=0.3", f"runs_dir={tmp_path}"])
    assert result.exit_code == 2
    assert "dpo.betta: unknown key" in result.output
    assert not (tmp_path / "quickstart").exists()


def test_run_with_missing_data_file_fails_fast(tmp_path):
    result = runner.invoke(app, ["run", "recipes/quickstart.yaml", "data.ift=nope.jsonl"])
    assert result.exit_code == 2 and "data.ift" in result.output and "file not found" in result.output


def test_models_lists_bundled_models():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "smollm2-135m-instruct" in result.output and "gemma-3-270m" in result.output


def test_generate_and_judge_on_a_local_model(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "Hi"}) + "\n" + json.dumps({"prompt": "Name a fruit."}) + "\n")
    out = tmp_path / "gen.jsonl"
    result = runner.invoke(app, ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(out), "--n", "3", "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "prompts-2"] and all(len(r["candidates"]) == 3 for r in rows)

    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"prompt": "Hi", "response": "Hello!"}) + "\n")
    scored = tmp_path / "scored.jsonl"
    result = runner.invoke(app, ["judge", "--model", str(tiny_model_dir), "--input", str(answers), "--output", str(scored), "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    row = read_jsonl(scored)[0]
    assert row["response"] == "Hello!" and len(row["judge_output"]) == 1
    assert row["parsed"] is (row["score"] is not None)


def test_judge_reports_bad_rows_with_file_and_line(tmp_path, tiny_model_dir):
    bad = tmp_path / "answers.jsonl"
    bad.write_text(json.dumps({"prompt": "Hi"}) + "\n")
    result = runner.invoke(app, ["judge", "--model", str(tiny_model_dir), "--input", str(bad), "--output", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "answers.jsonl:1: missing field 'response'" in result.output
