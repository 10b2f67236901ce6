"""N answers per prompt from any model (in-process or behind an endpoint)."""

from __future__ import annotations

from autoalign.config import SampleConfig
from autoalign.prompts import render
from autoalign.runtime.pool import AnyModelRef
from autoalign.generation.base import sampling_params
from autoalign.stages.common import StageContext, first_error, run_items
from autoalign.types import Candidate, Message, Prompt


def answer_request(prompt: Prompt, control: bool) -> list[Message]:
    """The messages a prompt is sampled with: with the control instruction appended, or as is."""
    if not control:
        return prompt.messages
    last = prompt.messages[-1]
    return [*prompt.messages[:-1], {"role": "user", "content": render("answer_control", instruction=last["content"])}]


def sample_candidates(
    at: StageContext,
    model: AnyModelRef,
    prompts: list[Prompt],
    cfg: SampleConfig,
    *,
    name: str = "candidates",
    kind: str = "samples",
) -> dict[str, list[Candidate]]:
    """N samples per prompt from M_t at temperature > 0, each prompt with the short control
    instruction (answer directly, no follow-up questions)."""
    templates = ("answer_control",) if cfg.control_instruction else ()
    inputs = [model.key, *[p.id + p.text for p in prompts]]
    stage = at.stage(name, {"cfg": cfg.key(), "seed": at.seed}, inputs, templates, kind)
    by_id = {p.id: p for p in prompts}
    params = sampling_params(cfg.sampling, n=cfg.n, seed=at.seed)

    def process(ids: list[str]) -> list[dict]:
        requests = [answer_request(by_id[i], cfg.control_instruction) for i in ids]
        outputs = at.pool.generator(model, cfg.sampling.batch_size).generate(requests, params)
        return [{"id": i, "candidates": [c.to_dict() for c in cands]} for i, cands in zip(ids, outputs)]

    def summarize(rows: list[dict], seconds: float) -> dict:
        cands = [Candidate.from_dict(c) for r in rows for c in r["candidates"]]
        tokens = sum(c.num_tokens for c in cands)
        return {
            "model": model.label,
            "prompts": len(rows),
            "candidates": len(cands),
            "mean_tokens": tokens / max(1, len(cands)),
            "truncated": sum(c.finish_reason == "length" for c in cands),
            "empty": sum(not c.text and c.finish_reason != "error" for c in cands),
            "failed": sum(c.finish_reason == "error" for c in cands),
            "tokens_per_second": tokens / seconds if seconds > 0 else None,
        }

    error_of = lambda row: first_error(c.get("error") for c in row["candidates"])
    chunk = cfg.sampling.batch_size
    rows = run_items(
        at, stage, prompts, process, summarize, error_of, chunk_size=chunk, model=model, requests_per_item=cfg.n
    )
    return {r["id"]: [Candidate.from_dict(c) for c in r["candidates"]] for r in rows}


def first_answers(samples: dict[str, list[Candidate]]) -> dict[str, Candidate]:
    """Each prompt's first sample that did not fail and is not empty (prompts without one left out):
    the draft that revision-based feedback (constitutional, self_refine) works on."""
    return {
        pid: usable
        for pid, cands in samples.items()
        if (usable := next((c for c in cands if c.finish_reason != "error" and c.text.strip()), None))
    }
