"""The self-refine stage (inference/self_refine.py over a loop's sampled answers) and the pairs it
gives: the best-scored round over the first answer."""

from __future__ import annotations

from collections import Counter

from autoalign.config import JudgeConfig, SelfRefineConfig
from autoalign.generation.base import sampling_params
from autoalign.inference.self_refine import FEEDBACK_TEMPLATE, REVISE_TEMPLATE, SelfFeedback, self_refine
from autoalign.judges.base import JudgeFactory
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, once, run_items
from autoalign.stages.pairs import pairs_stage
from autoalign.types import Candidate, Pair, Prompt


def refine_drafts(
    at: StageContext,
    critic: AnyModelRef,
    judge_model: AnyModelRef,
    prompts: list[Prompt],
    drafts: dict[str, Candidate],
    cfg: SelfRefineConfig,
    judge_cfg: JudgeConfig,
    make_judge: JudgeFactory,
) -> dict[str, dict]:
    """iter_t/self_refinements: {prompt id: {"rounds": [{text, score, feedback}], "best", "stopped"}}."""
    todo = [p for p in prompts if p.id in drafts]
    by_id = {p.id: p for p in todo}
    inputs = [critic.key, judge_model.key, make_judge.key, *[p.id + p.text + drafts[p.id].text for p in todo]]
    config = {"cfg": cfg.key(), "judge": judge_cfg.key(), "seed": at.seed}
    stage = at.stage("self_refinements", config, inputs, (FEEDBACK_TEMPLATE, REVISE_TEMPLATE), kind="self_refinements")
    params = sampling_params(cfg.sampling, n=1, seed=at.seed)
    judge_once = once(lambda: make_judge(judge_model, judge_cfg, at.seed))

    def process(ids: list[str]) -> list[dict]:
        generator = at.pool.generator(critic, cfg.sampling.batch_size)
        requests = [by_id[i].messages for i in ids]
        refined = self_refine(
            generator, judge_once(), SelfFeedback(generator, params), requests, params, cfg.max_rounds,
            drafts=[drafts[i].text for i in ids],
        )  # fmt: skip
        return [{"id": i, **r.to_dict(), "tokens": r.tokens} for i, r in zip(ids, refined)]

    def summarize(rows: list[dict], seconds: float) -> dict:
        return {
            "critic": critic.label,
            "prompts": len(rows),
            "improved": sum(r["best"] > 0 for r in rows),
            "mean_rounds": sum(len(r["rounds"]) - 1 for r in rows) / max(1, len(rows)),
            "stopped": dict(Counter(r["stopped"] for r in rows)),
        }

    chunk = cfg.sampling.batch_size
    rows = run_items(
        at, stage, todo, process, summarize, lambda row: None, chunk_size=chunk, model=critic, concurrent=False
    )
    return {r["id"]: r for r in rows}


def refinement_pairs(at: StageContext, prompts: list[Prompt], refined: dict[str, dict], source: str) -> list[Pair]:
    """Chosen = the best round, rejected = the first answer, where the judge scored both and the
    best is higher (the first answer's own best is no pair: "not_improved")."""

    def build():
        pairs, dropped = [], Counter()
        for p in prompts:
            row = refined.get(p.id)
            if row is None:
                dropped["no_draft"] += 1
                continue
            first, best = row["rounds"][0], row["rounds"][row["best"]]
            if first["score"] is None or best["score"] is None:
                dropped["unscored"] += 1
            elif row["best"] == 0:
                dropped["not_improved"] += 1
            else:
                pairs.append(Pair(p.id, p.messages, best["text"], first["text"], best["score"], first["score"], source))
        return pairs, dropped

    inputs = [p.id + str(refined.get(p.id)) for p in prompts]
    return pairs_stage(at, source, build, config={}, inputs=inputs, prompts=len(prompts))
