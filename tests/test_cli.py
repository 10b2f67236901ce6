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
    result = runner.invoke(
        app,
        [
            "generate",
            "--model",
            str(tiny_model_dir),
            "--input",
            str(prompts),
            "--output",
            str(out),
            "--n",
            "3",
            "--max-new-tokens",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "prompts-2"] and all(len(r["candidates"]) == 3 for r in rows)

    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"prompt": "Hi", "response": "Hello!"}) + "\n")
    scored = tmp_path / "scored.jsonl"
    result = runner.invoke(
        app,
        [
            "judge",
            "--model",
            str(tiny_model_dir),
            "--input",
            str(answers),
            "--output",
            str(scored),
            "--max-new-tokens",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    row = read_jsonl(scored)[0]
    assert row["response"] == "Hello!" and len(row["judge_output"]) == 1
    assert row["parsed"] is (row["score"] is not None)


def test_judge_reports_bad_rows_with_file_and_line(tmp_path, tiny_model_dir):
    bad = tmp_path / "answers.jsonl"
    bad.write_text(json.dumps({"prompt": "Hi"}) + "\n")
    result = runner.invoke(
        app, ["judge", "--model", str(tiny_model_dir), "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2 and "answers.jsonl:1: missing field 'response'" in result.output


def test_eval_commands_on_a_local_model(tiny_model_dir, tmp_path, monkeypatch):
    """Plumbing of `autoalign eval`: each command writes its stage and prints its table; a
    second call reads the stored results without loading a model."""
    fixtures = __import__("pathlib").Path(__file__).parent / "fixtures"
    out = tmp_path / "eval"
    runner = CliRunner()
    model = str(tiny_model_dir)
    r = runner.invoke(
        app, ["eval", "ifeval", "--model", model, "--limit", "3", "--max-new-tokens", "8", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "IFEval" in r.output and "prompt" in r.output
    [metrics] = [p for p in out.glob("iter_0/ifeval_*/metrics.json") if "answers" not in p.parent.name]
    assert json.loads(metrics.read_text())["prompts"] == 3

    r = runner.invoke(
        app,
        [
            "eval",
            "h2h",
            "--model",
            model,
            "--baseline",
            model,
            "--judge",
            model,
            "--limit",
            "2",
            "--max-new-tokens",
            "8",
            "--judge-max-new-tokens",
            "8",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    [h2h] = out.glob("iter_0/h2h_*/metrics.json")
    m = json.loads(h2h.read_text())
    assert m["prompts"] == 2 and m["wins"] + m["ties"] + m["losses"] + m["unparsed"] == 2

    r = runner.invoke(
        app,
        [
            "eval",
            "reward",
            "--model",
            model,
            "--data",
            str(fixtures / "oasst_small.jsonl"),
            "--no-pool",
            "--max-new-tokens",
            "8",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    [rm] = out.glob("iter_0/reward_modeling_*/metrics.json")
    assert json.loads(rm.read_text())["responses"] == 5

    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert "IFEval" in html and "head to head" in html and "as a judge" in html

    from autoalign.runtime import pool as pool_module

    def no_loading(*args, **kwargs):
        raise AssertionError("stored results must not load a model")

    monkeypatch.setattr(pool_module, "load_model", no_loading)
    again = runner.invoke(
        app, ["eval", "ifeval", "--model", model, "--limit", "3", "--max-new-tokens", "8", "--out", str(out)]
    )
    assert again.exit_code == 0, again.output


def test_eval_ifeval_bad_file_names_line_and_field(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["nope:x"], "kwargs": [{}]}) + "\n")
    r = CliRunner().invoke(
        app, ["eval", "ifeval", "--model", str(tiny_model_dir), "--input", str(bad), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 2
    assert "bad.jsonl:1: field 'instruction_id_list[0]'" in r.output.replace("\n", "")
    assert not (tmp_path / "o").exists()


def _tiny_recipe(tmp_path, tiny_model_dir, name="tiny_cli", **extra):
    from pathlib import Path

    fix = Path("tests/fixtures").resolve()
    lines = [
        f"name: {name}",
        f"runs_dir: {tmp_path}",
        "iterations: 1",
        f"model: {{name: {tiny_model_dir}}}",
        f"data: {{ift: {fix}/ift_small.jsonl, eft: {fix}/eft_small.jsonl, heldout: {fix}/heldout_small.jsonl}}",
        f"create_prompts: {{from_file: {fix}/prompts_small.jsonl, num_prompts: 4}}",
        "sample: {n: 2, sampling: {max_new_tokens: 8, batch_size: 4}}",
        "judge: {sampling: {max_new_tokens: 8}}",
        "eval: {num_prompts: 2, sampling: {max_new_tokens: 8}}",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


def test_no_pairs_is_a_clean_error_and_a_failed_rerun_keeps_the_config(tiny_model_dir, tmp_path):
    recipe = _tiny_recipe(tmp_path, tiny_model_dir)
    # A random tiny model writes no rubric verdict, so self-rewarding has no pair to train on.
    result = runner.invoke(app, ["run", str(recipe)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no preference pairs to train on (dropped: {'fewer_than_two_scores': 4}" in result.output
    config = (tmp_path / "tiny_cli/config.yaml").read_text()
    (tmp_path / "empty.jsonl").write_text("")
    result = runner.invoke(app, ["run", str(recipe), f"data.heldout={tmp_path / 'empty.jsonl'}"])
    assert result.exit_code == 2 and "empty.jsonl: no prompts (the file is empty)" in result.output
    assert (tmp_path / "tiny_cli/config.yaml").read_text() == config  # what the report shows is still the real run


def test_credentials_in_the_endpoint_url_are_never_written_or_shown(tiny_model_dir, tmp_path):
    from fault_server import FaultServer

    with FaultServer() as server:
        url = server.base_url.replace("http://", "http://alice:s3cret@")
        recipe = _tiny_recipe(
            tmp_path,
            tiny_model_dir,
            loop="teacher_demo",
            teacher=f"{{endpoint: {{base_url: '{url}', model: teacher}}}}",
        )
        result = runner.invoke(app, ["run", str(recipe)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "alice" not in result.output and "***@127.0.0.1" in result.output
    for path in (tmp_path / "tiny_cli").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".yaml", ".html"):
            assert b"s3cret" not in path.read_bytes(), path


def test_engines_says_where_llama_server_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOALIGN_LLAMA_SERVER", raising=False)
    monkeypatch.setenv("AUTOALIGN_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(tmp_path))
    r = runner.invoke(app, ["engines"])
    assert r.exit_code == 0 and "not installed" in r.stdout and "auto -> transformers" in r.stdout
    from autoalign.engines.llamacpp_build import cached_binary

    server = cached_binary()
    assert server.is_relative_to(tmp_path / "tools")
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)
    r = runner.invoke(app, ["engines"])
    assert r.exit_code == 0 and str(server) in r.stdout and "auto -> llamacpp" in r.stdout


def test_eval_backend_auto_settles_to_what_can_run(tiny_model_dir, tmp_path):
    """`--backend auto` is settled before any answer is keyed: a checkpoint llama.cpp cannot take
    (the tiny model has no GGUF to borrow metadata from) is answered in-process."""
    r = CliRunner().invoke(
        app,
        ["eval", "ifeval", "--model", str(tiny_model_dir), "--limit", "2", "--max-new-tokens", "4"]
        + ["--backend", "auto", "--out", str(tmp_path / "eval")],
    )
    assert r.exit_code == 0, r.output
    assert "generation backend: transformers" in r.output
    [answers] = (tmp_path / "eval").glob("iter_0/ifeval_answers_*/data.jsonl")
    assert len(answers.read_text().splitlines()) == 2


def test_eval_labels_tell_two_runs_final_models_apart(tmp_path):
    """Two runs' final models evaluated into one --out store must not share (and overwrite) a stage."""
    from autoalign.cli_eval import _label

    a, b = (tmp_path / f"runs/{name}/iter_1/dpo/model" for name in ("a", "b"))
    a.mkdir(parents=True), b.mkdir(parents=True)
    assert _label(str(a)) == "a-iter_1-dpo-model" and _label(str(b)) == "b-iter_1-dpo-model"
    assert _label("smollm2-135m-instruct") == "smollm2-135m-instruct"  # a bundled name stays as it is


def test_generate_best_of_n_keeps_the_answer_the_verifier_scores_highest(tiny_model_dir, tmp_path):
    from autoalign.verifiers.ifeval import load_ifeval, score_response

    checks = tmp_path / "checks.jsonl"
    specs = [
        {"key": 1, "prompt": "Name a fruit.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
        {
            "key": 2,
            "prompt": "Hi",
            "instruction_id_list": ["change_case:english_lowercase", "length_constraints:number_words"],
            "kwargs": [{}, {"relation": "less than", "num_words": 4}],
        },
    ]
    checks.write_text("".join(json.dumps(s) + "\n" for s in specs))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Name a fruit.", "Hi", "Unchecked?")))
    out = tmp_path / "best.jsonl"
    args = ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(out)]
    args += ["--best-of", "4", "--verifier-file", str(checks), "--max-new-tokens", "8", "--temperature", "1.0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 of 3 prompts got no score" in result.output  # "Unchecked?" is not in the file
    by_prompt = {spec.prompt: spec for spec in load_ifeval(str(checks))}
    rows = read_jsonl(out)
    for row in rows:
        texts = [c["text"] for c in row["candidates"]]
        assert len(texts) == 4 and row["answer"] == texts[row["best"]]
        spec = by_prompt.get(row["messages"][-1]["content"])
        if spec is None:
            assert row["scores"] == [None] * 4 and row["best"] == 0
            continue
        expected = [5 * sum(score_response(spec, t).loose) / len(spec.instruction_ids) for t in texts]
        assert row["scores"] == expected
        assert row["best"] == expected.index(max(expected))


def test_generate_best_of_n_refuses_two_candidate_counts(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi"}) + "\n")
    args = ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(tmp_path / "o.jsonl")]
    result = runner.invoke(app, [*args, "--best-of", "4", "--n", "2"])
    assert result.exit_code != 0 and "--n and --best-of" in result.output
    result = runner.invoke(app, [*args, "--best-of", "2", "--select", "reward-model"])
    assert result.exit_code != 0 and "needs --reward-model DIR" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_generate_refine_with_verifier_feedback_keeps_the_best_scored_round(tiny_model_dir, tmp_path):
    checks = tmp_path / "checks.jsonl"
    spec = {"key": 1, "prompt": "Name a fruit.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    checks.write_text(json.dumps(spec) + "\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Name a fruit."}) + "\n")
    out = tmp_path / "refined.jsonl"
    args = ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(out)]
    args += ["--refine", "2", "--feedback", "verifier", "--verifier-file", str(checks), "--max-new-tokens", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [row] = read_jsonl(out)
    scores = [r["score"] for r in row["rounds"]]
    assert all(s in (0.0, 5.0) for s in scores) and 1 <= len(scores) <= 3
    assert row["best"] == scores.index(max(scores)) and row["answer"] == row["rounds"][row["best"]]["text"]
    first = row["rounds"][0]
    # the verifier's feedback: none when the first answer has no comma, else the comma evidence
    assert (first["feedback"] is None) == (scores[0] == 5.0)
    if scores[0] == 5.0:
        assert row["stopped"] == "nothing_to_fix" and len(scores) == 1
    else:
        assert "comma" in first["feedback"] and len(scores) >= 2


def test_generate_with_a_constitution_revises_each_answer(tiny_model_dir, tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("Answer in one short sentence.\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Name a fruit."}) + "\n" + json.dumps({"prompt": "Hi"}) + "\n")
    out = tmp_path / "revised.jsonl"
    args = ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(out)]
    result = runner.invoke(app, [*args, "--constitution", str(rules), "--max-new-tokens", "6"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert len(rows) == 2 and all(r["principle"] == "line_1" and r["answer"] == r["revised"] for r in rows)
    result = runner.invoke(app, [*args, "--constitution", str(rules), "--best-of", "2"])
    assert result.exit_code != 0 and "choose one" in result.output
    result = runner.invoke(app, [*args, "--constitution", str(tmp_path / "none.yaml")])
    assert result.exit_code != 0 and "constitution file not found" in result.output


def test_generate_with_in_context_alignment_samples_the_full_conversation(tiny_model_dir, tmp_path):
    from autoalign.config import ModelConfig
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.urial import load_in_context
    from autoalign.runtime.pool import ModelPool, ModelRef

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Name a fruit."}) + "\n")
    out = tmp_path / "urial.jsonl"
    args = ["generate", "--model", str(tiny_model_dir), "--input", str(prompts), "--output", str(out)]
    result = runner.invoke(app, [*args, "--urial", "builtin:urial.yaml", "--max-new-tokens", "6", "--seed", "2"])
    assert result.exit_code == 0, result.output
    [row] = read_jsonl(out)
    assert row["messages"] == [{"role": "user", "content": "Name a fruit."}]  # the row keeps the user's prompt
    pool = ModelPool(ModelConfig())
    full = load_in_context("builtin:urial.yaml").messages(row["messages"])
    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=6, seed=2)
    [[expected]] = pool.generator(ModelRef("model", tiny_model_dir, str(tiny_model_dir)), 8).generate([full], params)
    pool.close()
    assert row["candidates"][0]["text"] == expected.text
    result = runner.invoke(app, [*args, "--urial", str(tmp_path / "none.yaml")])
    assert result.exit_code != 0 and "in-context alignment file not found" in result.output
