"""The `autoalign` command line: run recipes, list models, generate and judge from files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from autoalign.cli_common import USER_ERRORS, console, load_pool, stdout_console
from autoalign.cli_common import fail as _fail
from autoalign.cli_eval import eval_app
from autoalign.cli_generate import generate
from autoalign.cli_rm import rm_app
from autoalign.config import load_config
from autoalign.io import iter_rows, require_field, write_json, write_jsonl

app = typer.Typer(
    help="Automated alignment of language models: self-rewarding and teacher-guided loops, DPO, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")
app.add_typer(rm_app, name="rm")
app.command()(generate)


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/quickstart.yaml")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides, e.g. dpo.beta=0.2 sample.n=8")
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Ask again for items that failed (no answer from an endpoint) in finished stages"
        ),
    ] = False,
) -> None:
    """Run a recipe end to end. Finished stages are read from runs/<name>/ and skipped, so
    re-running the same command resumes after a crash and completes at once when all is done.
    Items that failed are retried on resume; in a finished stage, only with --retry-failed."""
    try:
        cfg = load_config(recipe, overrides)
    except USER_ERRORS as e:
        _fail(e)
    from autoalign.loops import iterate
    from autoalign.summary import print_comparison, print_summary
    from autoalign.train import distributed, jobs

    world = distributed.start()
    if not world.is_main:  # launched with others: this process only helps train (train/distributed.py)
        jobs.follow()
        return
    console.print(f"[bold]autoalign[/] {cfg.loop} -> {cfg.run_dir}")
    if world.parallel:
        console.print(f"training data-parallel on {world.size} processes; everything else runs in this one")
    started = time.perf_counter()
    try:
        result = iterate.run(cfg, log=lambda m: console.print(m), retry_failed=retry_failed)
    except USER_ERRORS as e:
        _fail(e)
    jobs.release_followers()
    elapsed = time.perf_counter() - started
    write_json(cfg.run_dir / "result.json", {**result, "wall_seconds": elapsed})
    from autoalign.report import write_report

    report = write_report(cfg.run_dir)
    out = stdout_console()
    if cfg.loop == "inference_time":
        from autoalign.summary import print_inference_table

        print_inference_table(cfg.run_dir, out)
        console.print(f"report: {report}  ({elapsed:.0f}s)")
    elif cfg.branches or cfg.optimizers:
        print_comparison(cfg.run_dir, cfg.branches or list(cfg.optimizers), cfg.iterations, out)
        finals = ", ".join(f"{s}: {r['final_model'] or 'none'}" for s, r in result["branches"].items())
        console.print(f"final models: {finals}  ({elapsed:.0f}s)")
        console.print(f"report: {report}")
    else:
        print_summary(cfg.run_dir, cfg.iterations, out)
        console.print(f"final model: {result['final_model']}  ({elapsed:.0f}s)")
        console.print(f"report: {report}")


@app.command()
def w2s(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/w2s.yaml")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. w2s.train_pairs=64")] = None,
) -> None:
    """Weak-to-strong generalisation: a weak supervisor labels comparisons whose truth a verifier
    knows, a strong reward model learns from its labels and from the truth; prints the three
    accuracies and the performance gap recovered (PGR) with bootstrap intervals."""
    try:
        cfg = load_config(recipe, overrides)
    except USER_ERRORS as e:
        _fail(e)
    from autoalign.loops import w2s as w2s_loop
    from autoalign.report import write_report
    from autoalign.summary import print_summary

    console.print(f"[bold]autoalign w2s[/] {cfg.w2s.weak} -> {cfg.w2s.strong_model} -> {cfg.run_dir}")
    started = time.perf_counter()
    try:
        w2s_loop.run(cfg, log=lambda m: console.print(m))
    except USER_ERRORS as e:
        _fail(e)
    write_json(cfg.run_dir / "result.json", {"wall_seconds": time.perf_counter() - started})
    print_summary(cfg.run_dir, 1, stdout_console())
    console.print(f"report: {write_report(cfg.run_dir)}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. runs/quickstart")],
) -> None:
    """Write RUN_DIR/report.html: metrics per iteration, training curves, score histograms,
    length drift, win rates, IFEval, example pairs and the resolved config, in one file."""
    from autoalign.report import write_report

    try:
        out = write_report(run_dir)
    except USER_ERRORS as e:
        _fail(e)
    console.print(f"wrote {out}")


@app.command()
def review(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. runs/quickstart")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one)")] = 0,
    who: Annotated[str, typer.Option(help="The name your labels are stored under")] = "reviewer",
    export_items: Annotated[Path | None, typer.Option(help="Write the pending items as JSONL, then exit")] = None,
    export_labels: Annotated[Path | None, typer.Option(help="Write every answer as JSONL, then exit")] = None,
    import_labels: Annotated[Path | None, typer.Option(help="Store answers made elsewhere (JSONL), then exit")] = None,
) -> None:
    """Serve RUN_DIR's review queue (items the critic was unsure of) as a web page on 127.0.0.1,
    behind a random token printed here; answers are stored in RUN_DIR/review.sqlite at once.
    With an export or import option, move the queue as JSONL instead."""
    from autoalign.review.app import serve
    from autoalign.review.queue import QUEUE_FILE, ReviewQueue

    if not (run_dir / QUEUE_FILE).exists():
        _fail(FileNotFoundError(f"{run_dir} has no review queue ({QUEUE_FILE}): no item was escalated to a person"))
    if not (export_items or export_labels or import_labels):
        serve(run_dir, port, who, log=console.print)
        return
    with ReviewQueue(run_dir / QUEUE_FILE) as queue:
        try:
            if import_labels:
                console.print(f"stored {queue.import_labels(import_labels, who=who)} answers from {import_labels}")
            if export_items:
                console.print(f"wrote {queue.export_items(export_items)} pending items to {export_items}")
            if export_labels:
                console.print(f"wrote {queue.export_labels(export_labels)} answers to {export_labels}")
        except USER_ERRORS as e:
            _fail(e)


@app.command()
def models(
    gguf: Annotated[
        str | None,
        typer.Option(
            help="Print the path of this bundled model's GGUF file (fetched once), e.g. to serve it with llama.cpp"
        ),
    ] = None,
) -> None:
    """List the bundled models and whether they are cached locally."""
    from autoalign.models import list_models

    if gguf is not None:
        from autoalign.models.bundled import BUNDLED, ensure_gguf

        if gguf not in BUNDLED:
            _fail(ValueError(f"unknown bundled model '{gguf}' (bundled: {', '.join(BUNDLED)})"))
        print(ensure_gguf(gguf, log=lambda m: console.print(m)))
        return

    table = Table(title="bundled models (any local Hugging Face directory or hub id also works)")
    for column in ("name", "cached", "description", "path"):
        table.add_column(column)
    for m in list_models():
        table.add_row(m["name"], m["cached"], m["description"], m["path"])
    Console().print(table)


@app.command()
def engines(
    build: Annotated[
        bool, typer.Option(help="Build llama.cpp's server now if it is not installed (~8-12 min)")
    ] = False,
) -> None:
    """Where llama.cpp's server (model.backend: llamacpp) comes from, building it with --build."""
    from autoalign.engines.llamacpp_build import LLAMA_CPP_PYTHON, cached_binary, installed_server, server_binary

    try:
        binary = server_binary(log=lambda m: console.print(m)) if build else installed_server()
    except USER_ERRORS as e:
        _fail(e)
    if binary is None:
        print(
            f"llama-server: not installed (`autoalign engines --build` builds llama.cpp {LLAMA_CPP_PYTHON}'s into {cached_binary()})"
        )
        print("model.backend auto -> transformers")
    else:
        print(f"llama-server: {binary}")
        print("model.backend auto -> llamacpp (bundled models and checkpoints trained from them)")


@app.command()
def judge(
    model: Annotated[str, typer.Option(help="Judge model: bundled name, local HF directory, or hub id")],
    input: Annotated[Path, typer.Option(help="JSONL/Parquet of {prompt, response} rows")],
    output: Annotated[Path, typer.Option(help="JSONL to write: each row plus score, parsed, judge_output")],
    samples: Annotated[
        int, typer.Option(help="Judge samples averaged per response (needs temperature > 0 if > 1)")
    ] = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 192,
    batch_size: int = 8,
    seed: int = 0,
    dtype: str = "float32",
    chat_template: Annotated[str | None, typer.Option(help="Built-in name or Jinja file, for base models")] = None,
) -> None:
    """Score responses with the additive 5-point rubric (LLM-as-a-judge)."""
    from autoalign.generation.base import SamplingParams
    from autoalign.judges import JudgeItem, RubricJudge

    try:
        rows = []
        for line, row in iter_rows(input):
            require_field(input, line, row, "prompt", str)
            require_field(input, line, row, "response", str)
            rows.append(row)
        pool, ref = load_pool(model, dtype, chat_template)
        rubric = RubricJudge(
            pool.generator(ref, batch_size),
            SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed),
            samples,
        )
    except (*USER_ERRORS, ValueError) as e:
        _fail(e)
    items = [JudgeItem(prompt=[{"role": "user", "content": r["prompt"]}], response=r["response"]) for r in rows]
    from tqdm.auto import tqdm

    out = []
    for start in tqdm(range(0, len(items), batch_size), desc="judging", unit="batch"):
        for row, verdict in zip(rows[start : start + batch_size], rubric.judge(items[start : start + batch_size])):
            out.append({**row, "score": verdict.score, "parsed": verdict.parsed, "judge_output": verdict.raw})
    write_jsonl(output, out)
    parsed = sum(r["parsed"] for r in out)
    console.print(f"wrote {len(out)} rows to {output}; parse rate {parsed}/{len(out)}")


def main() -> None:  # pragma: no cover - entry point
    from autoalign.train.distributed import launched_size

    if launched_size() > 1 and sys.argv[1:2] != ["run"]:
        # Every launched process would run the whole command and write the same files.
        _fail(ValueError("under a multi-process launcher only `autoalign run` is supported (it trains data-parallel)"))
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
