"""The constitutional critique -> revision stage (inference/constitutional.py over a loop's
sampled answers), resumable per prompt like any other stage."""

from __future__ import annotations

from autoalign.config import ConstitutionConfig
from autoalign.generation.base import sampling_params
from autoalign.inference.constitutional import (
    CRITIQUE_TEMPLATE,
    REVISION_TEMPLATE,
    Principle,
    critique_and_revise,
)
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, run_items
from autoalign.store import content_key
from autoalign.types import Candidate, Prompt


def constitutional_revisions(
    at: StageContext,
    reviser: AnyModelRef,
    prompts: list[Prompt],
    originals: dict[str, Candidate],
    principles: list[Principle],
    cfg: ConstitutionConfig,
) -> dict[str, Candidate]:
    """iter_t/revisions: each original answer critiqued against a drawn principle and revised.
    Rows also carry `messages` (the prompt plus the revision as the assistant's turn), so the
    stage's data.jsonl loads as SFT data as it is. Returns the revisions as candidates."""
    todo = [p for p in prompts if p.id in originals]
    by_id = {p.id: p for p in todo}
    inputs = [reviser.key, *[p.id + p.text + originals[p.id].text for p in todo]]
    config = {"principles": content_key([vars(p) for p in principles]), "sampling": cfg.sampling.key(), "seed": at.seed}
    stage = at.stage("revisions", config, inputs, (CRITIQUE_TEMPLATE, REVISION_TEMPLATE), kind="revisions")
    params = sampling_params(cfg.sampling, n=1, seed=at.seed)

    def process(ids: list[str]) -> list[dict]:
        generator = at.pool.generator(reviser, cfg.sampling.batch_size)
        requests = [by_id[i].messages for i in ids]
        revisions = critique_and_revise(
            generator, principles, requests, [originals[i].text for i in ids], params, at.seed
        )
        return [
            {"id": i, **r.to_dict(), "messages": [*by_id[i].messages, {"role": "assistant", "content": r.revised}]}
            for i, r in zip(ids, revisions)
        ]

    def summarize(rows: list[dict], seconds: float) -> dict:
        by_principle: dict[str, int] = {}
        for r in rows:
            by_principle[r["principle"]] = by_principle.get(r["principle"], 0) + 1
        return {
            "reviser": reviser.label,
            "revisions": len(rows),
            "by_principle": by_principle,
            "unchanged": sum(r["revised"].strip() == r["original"].strip() for r in rows),
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
            "failed": sum(r["finish_reason"] == "error" for r in rows),
            "mean_tokens": sum(r["tokens"] for r in rows) / max(1, len(rows)),
        }

    rows = run_items(
        at, stage, todo, process, summarize, lambda row: row.get("error"), chunk_size=cfg.sampling.batch_size,
        model=reviser, requests_per_item=2,
    )  # fmt: skip
    return {
        r["id"]: Candidate(
            text=r["revised"], num_tokens=r["tokens"], finish_reason=r["finish_reason"], error=r.get("error")
        )
        for r in rows
    }
