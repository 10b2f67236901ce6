"""A basic judge-based comparison of two models on held-out prompts: each model answers every
prompt (greedy by default), a fixed judge scores each answer with the rubric, and the scores
are compared per prompt. The full evaluation suite (both-order pairwise judging, win rates,
IFEval) is separate; this is the per-iteration signal the loop records.
"""

from __future__ import annotations

from statistics import mean

from autoalign.config import EvalConfig, JudgeConfig, SampleConfig
from autoalign.loops.pool import AnyModelRef, ModelPool, ModelRef
from autoalign.loops.stages import JudgeFactory, judge_candidates, judgment_metrics, sample_candidates
from autoalign.store import RunStore
from autoalign.types import Judgment, Prompt


def compare_models(
    store: RunStore,
    t: int,
    new: ModelRef,
    old: ModelRef,
    judge_model: AnyModelRef,
    prompts: list[Prompt],
    cfg: EvalConfig,
    judge_cfg: JudgeConfig,
    pool: ModelPool,
    make_judge: JudgeFactory,
    seed: int,
    old_store: RunStore | None = None,
) -> dict:
    """Each model's answers and their verdicts are stages of their own (eval_answers_<label>,
    eval_judgments_<label>); old_store, when given, holds the old model's, so branches that
    start from the same M1 answer and judge it once."""
    prompts = prompts[: cfg.num_prompts]
    answer_cfg = SampleConfig(n=1, control_instruction=False, sampling=cfg.sampling)
    answers, verdicts = {}, {}
    for ref, st in ((new, store), (old, old_store or store)):
        answers[ref.label] = sample_candidates(st, t, ref, prompts, answer_cfg, pool, seed, name=f"eval_answers_{ref.label}")
        verdicts[ref.label] = judge_candidates(st, t, judge_model, prompts, answers[ref.label], judge_cfg, make_judge, pool, seed, name=f"eval_judgments_{ref.label}")
    new_j = [verdicts[new.label][p.id][0] for p in prompts]
    old_j = [verdicts[old.label][p.id][0] for p in prompts]
    inputs = [new.key, old.key, *[str(j.to_dict()) for j in new_j + old_j]]
    stage = store.stage(t, "eval", {"cfg": cfg.key(), "judge": judge_model.key}, inputs)
    if not stage.done():
        stage.begin()
        rows = [
            {"id": p.id, "prompt": p.messages, new.label: answers[new.label][p.id][0].text, old.label: answers[old.label][p.id][0].text,
             f"{new.label}_judgment": new_j[i].to_dict(), f"{old.label}_judgment": old_j[i].to_dict()}
            for i, p in enumerate(prompts)
        ]
        metrics = {"new": new.label, "old": old.label, "judge": judge_model.label, **score_comparison(new_j, old_j),
                   "new_judging": judgment_metrics(new_j), "old_judging": judgment_metrics(old_j)}
        stage.finish(rows, metrics)
    return stage.metrics()


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
