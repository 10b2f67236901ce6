"""A basic judge-based comparison of two models on held-out prompts: each model answers every
prompt (greedy by default), a fixed judge scores each answer with the rubric, and the scores
are compared per prompt. The full evaluation suite (both-order pairwise judging, win rates,
IFEval) is separate; this is the per-iteration signal the loop records.
"""

from __future__ import annotations

from statistics import mean

from autoalign.config import EvalConfig, JudgeConfig
from autoalign.judges.base import JudgeItem
from autoalign.loops.pool import ModelPool, ModelRef
from autoalign.loops.stages import JudgeFactory, judgment_metrics, sampling_params
from autoalign.store import RunStore
from autoalign.types import Judgment, Prompt


def compare_models(store: RunStore, t: int, new: ModelRef, old: ModelRef, judge_model: ModelRef, prompts: list[Prompt], cfg: EvalConfig, judge_cfg: JudgeConfig, pool: ModelPool, make_judge: JudgeFactory, seed: int) -> dict:
    prompts = prompts[: cfg.num_prompts]
    stage = store.stage(t, "eval", {"cfg": cfg.model_dump(), "judge": judge_cfg.model_dump(), "seed": seed}, [new.key, old.key, judge_model.key, getattr(make_judge, "key", ""), *[p.id + p.text for p in prompts]])
    if stage.done():
        return stage.metrics()
    stage.begin()
    params = sampling_params(cfg.sampling, n=1, seed=seed)
    requests = [p.messages for p in prompts]
    answers = {}
    for ref in (new, old):
        outputs = pool.generator(ref, cfg.sampling.batch_size).generate(requests, params)
        answers[ref.label] = [cands[0].text for cands in outputs]
    judge = make_judge(judge_model, judge_cfg, seed)
    items = [JudgeItem(prompt=p.messages, response=answers[ref.label][i]) for ref in (new, old) for i, p in enumerate(prompts)]
    verdicts = judge.judge(items)
    new_j, old_j = verdicts[: len(prompts)], verdicts[len(prompts) :]
    rows = [
        {"id": p.id, "prompt": p.messages, new.label: answers[new.label][i], old.label: answers[old.label][i],
         f"{new.label}_judgment": new_j[i].to_dict(), f"{old.label}_judgment": old_j[i].to_dict()}
        for i, p in enumerate(prompts)
    ]
    metrics = {"new": new.label, "old": old.label, "judge": judge_model.label, **score_comparison(new_j, old_j),
               "new_judging": judgment_metrics(new_j), "old_judging": judgment_metrics(old_j)}
    stage.finish(rows, metrics)
    return metrics


def score_comparison(new: list[Judgment], old: list[Judgment]) -> dict:
    """Per-prompt win/tie/loss of new over old by judge score; prompts where either answer's
    judgment did not parse are counted as unscored, not as ties."""
    both = [(a.score, b.score) for a, b in zip(new, old) if a.score is not None and b.score is not None]
    wins = sum(a > b for a, b in both)
    ties = sum(a == b for a, b in both)
    losses = sum(a < b for a, b in both)
    new_scores = [j.score for j in new if j.score is not None]
    old_scores = [j.score for j in old if j.score is not None]
    return {
        "prompts": len(new),
        "compared": len(both),
        "unscored": len(new) - len(both),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": (wins + 0.5 * ties) / len(both) if both else None,
        "new_mean_score": mean(new_scores) if new_scores else None,
        "old_mean_score": mean(old_scores) if old_scores else None,
    }
