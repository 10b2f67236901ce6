"""`autoalign generate`: answers for a file of prompts, plain samples or aligned at inference time
(inference/): best-of-N picks the answer a verifier, a reward model or the model's own rubric
judge scores highest; self-refine revises an answer from feedback and keeps the round that
scorer rates best; --constitution critiques each answer against a drawn principle and revises it;
--urial puts a preamble and demonstrations before each request (in-context alignment of a base model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from autoalign.cli_common import USER_ERRORS, console, fail, load_pool
from autoalign.io import write_jsonl

IFEVAL = "builtin:ifeval_input_data.jsonl"


def make_selector(select: str, reward_model: Path | None, verifier_file: str, pool, ref, batch_size: int, seed: int):
    """The judge best-of-N ranks answers with."""
    if select == "verifier":
        from autoalign.judges.verifier import VerifierJudgeFactory

        return VerifierJudgeFactory(verifier_file)(None, None, seed)
    if select == "reward-model":
        if reward_model is None:
            raise ValueError("--select reward-model needs --reward-model DIR (train one: autoalign rm train)")
        from autoalign.judges.reward_model import RewardModelJudgeFactory

        return RewardModelJudgeFactory(reward_model)(None, None, seed)
    from autoalign.generation.base import SamplingParams
    from autoalign.judges import RubricJudge

    return RubricJudge(pool.generator(ref, batch_size), SamplingParams(temperature=0.0, max_new_tokens=192, seed=seed))


def make_feedback(kind: str, verifier_file: str, generator, params):
    """What self-refine revises from: the model's own critique, or the checkers' evidence."""
    from autoalign.inference.self_refine import SelfFeedback, VerifierFeedback

    if kind == "verifier":
        from autoalign.verifiers.ifeval import load_ifeval

        return VerifierFeedback(load_ifeval(verifier_file))
    return SelfFeedback(generator, params)


def generate(
    model: Annotated[str, typer.Option(help="Bundled name, local HF directory, or hub id")],
    input: Annotated[Path, typer.Option(help="JSONL/Parquet of {prompt} or {messages} rows")],
    output: Annotated[Path, typer.Option(help="JSONL to write: each input row plus 'candidates'")],
    n: Annotated[int, typer.Option(help="Candidates per prompt", min=1)] = 1,
    best_of: Annotated[
        int, typer.Option(help="Sample this many answers and keep the best (--select); adds 'answer', 'scores'", min=1)
    ] = 1,
    select: Annotated[
        Literal["verifier", "reward-model", "judge"],
        typer.Option(help="Best-of-N scorer: IFEval-style checkers, a reward model, or the model's own rubric"),
    ] = "verifier",
    refine: Annotated[
        int, typer.Option(help="Self-refine: up to this many feedback -> revision rounds, the best round kept", min=0)
    ] = 0,
    feedback: Annotated[
        Literal["self", "verifier"],
        typer.Option(
            help="--refine: the model critiques itself, or the checkers of --verifier-file say what is missed"
        ),
    ] = "self",
    constitution: Annotated[
        str | None,
        typer.Option(
            help="Critique and revise each answer against a principle of this file (builtin:constitution.yaml)"
        ),
    ] = None,
    urial: Annotated[
        str | None,
        typer.Option(
            help="In-context alignment: a preamble and demonstrations before each request (builtin:urial.yaml)"
        ),
    ] = None,
    reward_model: Annotated[Path | None, typer.Option(help="--select reward-model: its directory")] = None,
    verifier_file: Annotated[str, typer.Option(help="--select verifier: IFEval-format prompts and checks")] = IFEVAL,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    seed: int = 0,
    dtype: str = "float32",
    backend: Annotated[
        str, typer.Option(help="transformers, llamacpp, vllm or auto (the fastest here)")
    ] = "transformers",
    chat_template: Annotated[str | None, typer.Option(help="Built-in name or Jinja file, for base models")] = None,
) -> None:
    """Sample answers for a file of prompts with any model (best-of-N with --best-of, self-refine with --refine)."""
    from tqdm.auto import tqdm

    from autoalign.data import load_prompts
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.best_of_n import best_of_n
    from autoalign.inference.constitutional import critique_and_revise, load_constitution
    from autoalign.inference.self_refine import self_refine
    from autoalign.inference.urial import InContextGenerator, load_in_context

    try:
        if best_of > 1 and n > 1:
            raise ValueError("--n and --best-of both set the candidates per prompt: set one")
        if sum([best_of > 1, refine > 0, constitution is not None]) > 1:
            raise ValueError("--best-of, --refine and --constitution are separate methods: choose one")
        if (refine or constitution) and n > 1:
            raise ValueError("--refine and --constitution revise one answer per prompt: leave --n at 1")
        principles = load_constitution(constitution) if constitution else None
        in_context = load_in_context(urial) if urial else None
        prompts = load_prompts(str(input))
        pool, ref = load_pool(model, dtype, chat_template, backend)
        aligned = best_of > 1 or refine > 0
        selector = make_selector(select, reward_model, verifier_file, pool, ref, batch_size, seed) if aligned else None
    except (*USER_ERRORS, ValueError) as e:
        fail(e)
    params = SamplingParams(
        n=max(n, best_of), temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
    )
    rows, unscored = [], 0
    try:
        generator = pool.generator(ref, batch_size)
        if in_context:  # the base model aligned by its prompt; every method below samples through it
            generator = InContextGenerator(generator, in_context)
        critic = make_feedback(feedback, verifier_file, generator, params) if refine else None
        for start in tqdm(range(0, len(prompts), batch_size), desc="generating", unit="batch"):
            chunk = prompts[start : start + batch_size]
            requests = [p.messages for p in chunk]
            if principles:
                first = [c.text for [c] in generator.generate(requests, params)]
                for p, r in zip(chunk, critique_and_revise(generator, principles, requests, first, params, seed)):
                    rows.append({"id": p.id, "messages": p.messages, "answer": r.revised, **r.to_dict()})
                continue
            if selector is None:
                for p, cands in zip(chunk, generator.generate(requests, params)):
                    rows.append({"id": p.id, "messages": p.messages, "candidates": [c.to_dict() for c in cands]})
                continue
            if refine:
                for p, refined in zip(chunk, self_refine(generator, selector, critic, requests, params, refine)):
                    unscored += all(r.score is None for r in refined.rounds)
                    rows.append({"id": p.id, "messages": p.messages, "answer": refined.answer, **refined.to_dict()})
                continue
            for p, picked in zip(chunk, best_of_n(generator, selector, requests, params)):
                unscored += all(s is None for s in picked.scores)
                rows.append({"id": p.id, "messages": p.messages, "answer": picked.answer.text, **picked.to_dict()})
    finally:
        pool.close()
    write_jsonl(output, rows)
    console.print(f"wrote {len(rows)} rows to {output}")
    if unscored:
        console.print(
            f"[yellow]{unscored} of {len(rows)} prompts got no score from --select {select}: their first answer is kept"
        )
