"""Every answer scored by a judge; the judge is built by a factory, and only when the stage has
work to do (a finished stage loads no model)."""

from __future__ import annotations

from collections import Counter

from autoalign.config import JudgeConfig
from autoalign.judges.base import JudgeFactory, JudgeItem
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, candidates_per_prompt, first_error, once, run_items
from autoalign.types import Candidate, Judgment, Prompt


def judge_candidates(
    at: StageContext,
    judge_model: AnyModelRef,
    prompts: list[Prompt],
    candidates: dict[str, list[Candidate]],
    cfg: JudgeConfig,
    make_judge: JudgeFactory,
    *,
    name: str = "judgments",
    kind: str = "judgments",
    role: str | None = None,
) -> dict[str, list[Judgment]]:
    """Every candidate scored by the judge (by default judge_model with the 5-point rubric);
    the judge is only built, and its model only loaded, if the stage has work to do. A candidate
    that failed (no answer from a remote backend) is not sent to the judge: its judgment is
    None with the reason. role: who judges, for the summary (self-judge, teacher; a verifier is
    always "verifier")."""
    inputs = [
        judge_model.key,
        make_judge.key,
        *[p.id + p.text + "".join(c.text for c in candidates[p.id]) for p in prompts],
    ]
    stage = at.stage(name, {"cfg": cfg.key_without(*cfg.PAIRWISE_ONLY), "seed": at.seed}, inputs, kind=kind)
    by_id = {p.id: p for p in prompts}
    judge_once = once(lambda: make_judge(judge_model, cfg, at.seed))

    def process(ids: list[str]) -> list[dict]:
        judge = judge_once()
        usable = [(i, k) for i in ids for k, c in enumerate(candidates[i]) if c.finish_reason != "error"]
        items = [JudgeItem(prompt=by_id[i].messages, response=candidates[i][k].text) for i, k in usable]
        by_key = dict(zip(usable, judge.judge(items) if usable else []))
        unjudged = lambda c: Judgment(score=None, raw=[], parsed=False, error=f"candidate failed: {c.error}")
        return [
            {"id": i, "judgments": [(by_key.get((i, k)) or unjudged(c)).to_dict() for k, c in enumerate(candidates[i])]}
            for i in ids
        ]

    def summarize(rows: list[dict], seconds: float) -> dict:
        metrics = judgment_metrics([Judgment.from_dict(j) for r in rows for j in r["judgments"]])
        who = {"verifier": "verifier", "reward_model": "reward model"}.get(make_judge.kind) or role
        who = who or f"judge {judge_model.label}"
        return {"judge": judge_model.label, "judge_kind": make_judge.kind, "judge_role": who, **metrics}

    def error_of(row: dict) -> str | None:
        # A judgment of a failed candidate is not the judge's failure: retrying the judge cannot help.
        return first_error(
            j["error"] for j in row["judgments"] if not (j["error"] or "").startswith("candidate failed")
        )

    chunk = max(1, cfg.sampling.batch_size // 2)
    per_item = candidates_per_prompt(prompts, candidates) * cfg.samples
    # A verifier is a program whose checkers' libraries are not known to be thread-safe; a reward
    # model runs in this process, where threads would only contend for the same cores.
    concurrent = make_judge.kind not in ("verifier", "reward_model")
    rows = run_items(
        at,
        stage,
        prompts,
        process,
        summarize,
        error_of,
        chunk_size=chunk,
        model=judge_model,
        requests_per_item=per_item,
        concurrent=concurrent,
    )
    return {r["id"]: [Judgment.from_dict(j) for j in r["judgments"]] for r in rows}


def judgment_metrics(judgments: list[Judgment]) -> dict:
    scores = [j.score for j in judgments if j.score is not None]
    histogram = Counter(str(round(s)) for s in scores)
    return {
        "judged": len(judgments),
        "parsed": len(scores),
        "parse_rate": len(scores) / max(1, len(judgments)),
        "failed": sum(j.error is not None for j in judgments),
        "unparsed_samples": dict(Counter(reason for j in judgments for reason in j.unparsed)),
        "mean_score": sum(scores) / len(scores) if scores else None,
        "score_histogram": {str(k): histogram.get(str(k), 0) for k in range(6)},
    }
