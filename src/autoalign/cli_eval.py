"""`autoalign eval ...`: the evaluation suite on any checkpoints, outside a recipe.

Results go to a run store (default runs/eval/), so answers are generated once per model and
prompt set, an interrupted evaluation resumes, and `autoalign report` can read them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autoalign.cli_common import USER_ERRORS, console, fail, stdout_console

eval_app = typer.Typer(
    help="Evaluate checkpoints: IFEval, head-to-head win rates, reward-modeling agreement.", no_args_is_help=True
)

ModelOpt = Annotated[str, typer.Option(help="Bundled name, local HF directory, or hub id")]
OutOpt = Annotated[Path, typer.Option(help="Run store for the results (answers are cached here and reused)")]
TemplateOpt = Annotated[str | None, typer.Option(help="Chat template (built-in name or Jinja file), for base models")]
BackendOpt = Annotated[
    str,
    typer.Option(
        help="How the model generates: transformers (in-process), llamacpp (a managed llama.cpp server) or auto"
    ),
]


def _label(spec: str) -> str:
    """A readable, path-safe label: the bundled name or the checkpoint directory's last parts,
    the run's name included (runs/a/iter_1/dpo/model -> a-iter_1-dpo-model), so the final models
    of two runs evaluated into one --out store get stages of their own."""
    path = Path(spec)
    name = spec if not path.exists() else "-".join(path.resolve().parts[-4:])
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-80:]


def _weights_fingerprint(path: Path) -> list:
    """Size and modification time of the weight files: a retrained checkpoint at the same path
    gets a new key without hashing gigabytes."""
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(path.glob("*.safetensors"))]


def _model_ref(
    spec: str, dtype: str, chat_template: str | None, label: str | None = None, backend: str = "transformers"
):
    from autoalign.config import ModelConfig
    from autoalign.runtime.pool import ModelRef
    from autoalign.models import resolve_model
    from autoalign.store import content_key

    from pydantic import ValidationError

    from autoalign.config import ConfigError

    try:
        cfg = ModelConfig(name=spec, dtype=dtype, chat_template=chat_template, backend=backend)
    except ValidationError as e:
        raise ConfigError(f"--backend / --dtype: {e.errors()[0]['msg']}") from None
    path = resolve_model(spec, log=lambda m: console.print(m))
    from autoalign.engines.llamacpp import settle_auto_backend

    settle_auto_backend(cfg, path, log=console.print)
    return ModelRef(
        label or _label(spec), path, content_key(cfg.key(), str(path), _weights_fingerprint(path)), config=cfg
    )


def _stage_context(out: Path, seed: int):
    """`autoalign eval` results land in out/iter_0/, cached and resumable like a run's stages."""
    from autoalign.config import ModelConfig
    from autoalign.runtime.pool import ModelPool
    from autoalign.stages.common import StageContext
    from autoalign.store import RunStore

    pool = ModelPool(ModelConfig(), http_cache_dir=out / "http_cache", answer_cache_dir=out / "answer_cache")
    return StageContext(RunStore(out), 0, pool, seed)


def _sampling(max_new_tokens: int, batch_size: int):
    from autoalign.config import SamplingConfig

    return SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch_size)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


@eval_app.command("ifeval")
def ifeval_cmd(
    model: ModelOpt,
    input: Annotated[
        str, typer.Option(help="IFEval-format JSONL/Parquet (key, prompt, instruction_id_list, kwargs)")
    ] = "builtin:ifeval_input_data.jsonl",
    limit: Annotated[int, typer.Option(help="Only the first N prompts (0 = all)")] = 0,
    max_new_tokens: int = 384,
    batch_size: int = 8,
    dtype: str = "float32",
    chat_template: TemplateOpt = None,
    backend: BackendOpt = "transformers",
    by_instruction: Annotated[bool, typer.Option(help="Also print accuracy per instruction id")] = False,
    out: OutOpt = Path("runs/eval"),
    seed: int = 0,
) -> None:
    """Verifiable instruction following: prompt- and instruction-level accuracy, strict and loose."""
    from autoalign.eval import suite
    from autoalign.verifiers.ifeval import load_ifeval

    try:
        items = load_ifeval(input)
        items = items[:limit] if limit else items
        ref = _model_ref(model, dtype, chat_template, backend=backend)
    except USER_ERRORS as e:
        fail(e)
    m = suite.ifeval(_stage_context(out, seed), ref, items, _sampling(max_new_tokens, batch_size))
    table = Table(title=f"IFEval: {ref.label} ({m['prompts']} prompts, {m['instructions']} instructions)")
    for column in ("level", "strict %", "loose %"):
        table.add_column(column)
    table.add_row("prompt", _pct(m["prompt_strict"]), _pct(m["prompt_loose"]))
    table.add_row("instruction", _pct(m["instruction_strict"]), _pct(m["instruction_loose"]))
    if by_instruction:
        for instruction_id, r in m["by_instruction"].items():
            table.add_row(f"{instruction_id} (n={r['n']})", _pct(r["strict"]), _pct(r["loose"]))
    stdout_console().print(table)
    console.print(f"{m['truncated_answers']} answers hit max_new_tokens; results in {out}/iter_0/ifeval_{ref.label}/")


@eval_app.command("h2h")
def head_to_head_cmd(
    model: ModelOpt,
    baseline: Annotated[str, typer.Option(help="The model to compare against")],
    judge: Annotated[str, typer.Option(help="Judge: a model spec, or the model name on --judge-base-url")],
    prompts: Annotated[
        str, typer.Option(help="Prompts: {prompt} or {messages} rows")
    ] = "builtin:heldout_prompts.jsonl",
    limit: Annotated[int, typer.Option(help="Only the first N prompts (0 = all)")] = 0,
    judge_base_url: Annotated[
        str | None, typer.Option(help="Judge behind an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    judge_api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the judge server's API key")
    ] = None,
    max_new_tokens: int = 256,
    judge_max_new_tokens: int = 160,
    fewshot: Annotated[
        bool,
        typer.Option(
            "--fewshot/--no-fewshot", help="Show the judge two worked comparisons first (small judges need them)"
        ),
    ] = True,
    batch_size: int = 8,
    dtype: str = "float32",
    chat_template: TemplateOpt = None,
    out: OutOpt = Path("runs/eval"),
    seed: int = 0,
) -> None:
    """Model vs baseline, judged in both orders: W/T/L, order consistency, win rate, LC win rate."""
    from autoalign.config import EndpointConfig, JudgeConfig
    from autoalign.data import load_prompts
    from autoalign.eval import suite
    from autoalign.generation.openai import check_endpoint
    from autoalign.runtime.pool import EndpointRef

    try:
        prompt_set = load_prompts(prompts)
        prompt_set = prompt_set[:limit] if limit else prompt_set
        model_ref = _model_ref(model, dtype, chat_template)
        baseline_ref = _model_ref(baseline, dtype, chat_template, label=None)
        if baseline_ref.label == model_ref.label:
            baseline_ref = _model_ref(baseline, dtype, chat_template, label=baseline_ref.label + "-baseline")
        if judge_base_url:
            judge_ref = EndpointRef(
                f"judge {judge}", EndpointConfig(base_url=judge_base_url, model=judge, api_key_env=judge_api_key_env)
            )
        else:
            judge_ref = _model_ref(judge, dtype, None)
        at, sampling = _stage_context(out, seed), _sampling(max_new_tokens, batch_size)
        if isinstance(judge_ref, EndpointRef):
            check_endpoint(judge_ref.endpoint)  # before any answer is generated
    except (*USER_ERRORS, ValueError) as e:
        fail(e)
    answers = {
        ref.label: suite.answers(at, ref, prompt_set, sampling, name=f"eval_answers_{ref.label}")
        for ref in (model_ref, baseline_ref)
    }
    at.pool.release()
    judge_cfg = JudgeConfig(sampling=_sampling(judge_max_new_tokens, batch_size), pairwise_fewshot=fewshot)
    name = f"h2h_{model_ref.label}_vs_{baseline_ref.label}"
    m = suite.head_to_head(at, prompt_set, answers, judge_ref, judge_cfg, name=name)
    stdout_console().print(head_to_head_table(m))
    console.print(f"results in {out}/iter_0/{name}/")


def head_to_head_table(m: dict) -> Table:
    table = Table(title=f"{m['model']} vs {m['baseline']} (judge {m['judge']}, {m['prompts']} prompts, both orders)")
    for column in ("win / tie / loss", "unparsed", "order consistency %", "win rate % (SE)", "LC win rate % (SE)"):
        table.add_column(column)
    se = lambda v, s: "-" if v is None else f"{v:.1f}" + ("" if s is None else f" ({s:.1f})")
    table.add_row(
        f"{m['wins']} / {m['ties']} / {m['losses']}",
        str(m["unparsed"]),
        _pct(m["order_consistency"]),
        se(m["win_rate"], m["standard_error"]),
        se(m["lc_win_rate"], m["lc_standard_error"]),
    )
    return table


@eval_app.command("reward")
def reward_cmd(
    model: ModelOpt,
    data: Annotated[
        str, typer.Option(help="Ranked responses: {prompt, responses, scores|ranks}, EFT rows, or OpenAssistant trees")
    ] = "builtin:seed_eft.jsonl",
    pool_groups: Annotated[
        bool,
        typer.Option(
            "--pool/--no-pool", help="Rank all responses together (absolute gold scores, one response per prompt)"
        ),
    ] = True,
    fewshot: Annotated[
        str, typer.Option(help="EFT scores to show as demonstrations before each verdict, e.g. '5,1' ('' = none)")
    ] = "",
    eft: Annotated[str, typer.Option(help="Where the demonstrations come from")] = "builtin:seed_eft.jsonl",
    max_new_tokens: int = 192,
    batch_size: int = 8,
    use_logprobs: Annotated[
        bool, typer.Option(help="Score = expected score under the verdict token's probabilities")
    ] = False,
    dtype: str = "float32",
    chat_template: TemplateOpt = None,
    out: OutOpt = Path("runs/eval"),
    seed: int = 0,
) -> None:
    """The model as a judge: rubric scores against a gold ranking (pairwise accuracy, 5-best,
    exact match, Spearman, Kendall tau-b, coverage)."""
    from autoalign.config import JudgeConfig
    from autoalign.data import load_eft
    from autoalign.judges.rubric import judge_demonstrations
    from autoalign.data.ranked import load_ranked
    from autoalign.eval import suite
    from autoalign.judges.rubric import RubricJudgeFactory

    try:
        groups = load_ranked(data)
        scores = [int(s) for s in fewshot.split(",") if s.strip()]
        judge_cfg = JudgeConfig(
            sampling=_sampling(max_new_tokens, batch_size), use_logprobs=use_logprobs, fewshot_scores=scores
        )
        demonstrations = judge_demonstrations(load_eft(eft), scores, judge_cfg.max_response_chars) if scores else []
        ref = _model_ref(model, dtype, chat_template)
    except (*USER_ERRORS, ValueError) as e:
        fail(e)
    # A prompt shown as a demonstration would be judged with its answer in view: leave it out.
    shown = {turn["content"] for turn in demonstrations if turn["role"] == "user"}
    kept = [g for g in groups if not any(g.prompt in text for text in shown)]
    if len(kept) < len(groups):
        console.print(f"left out {len(groups) - len(kept)} prompt(s) shown as judge demonstrations")
    groups = kept
    at = _stage_context(out, seed)
    make_judge = RubricJudgeFactory(at.pool, tuple(demonstrations))
    m = suite.reward_modeling(at, ref, groups, judge_cfg, make_judge, pooled=pool_groups)
    table = Table(title=f"{ref.label} as a judge ({m['responses']} responses in {m['groups']} group(s))")
    for column in ("coverage %", "pairwise acc. %", "5-best % (n)", "exact match %", "Spearman", "Kendall tau-b"):
        table.add_column(column)
    num = lambda v: "-" if v is None else f"{v:.3f}"
    table.add_row(
        _pct(m["coverage"]),
        _pct(m["pairwise_accuracy"]),
        f"{_pct(m['five_best'])} ({m['scored_five']})",
        _pct(m["exact_match"]),
        num(m["spearman"]),
        num(m["kendall_tau_b"]),
    )
    stdout_console().print(table)
