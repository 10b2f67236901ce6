"""The evaluation each loop iteration records: M_{t+1} against M_t on held-out prompts.

- rubric: a fixed judge scores each model's greedy answer with the 5-point rubric; per-prompt
  win/tie/loss by score (the signal the loop has recorded from the start);
- head to head (eval.pairwise): the same judge compares the two answers in both orders, giving
  order consistency and the AlpacaEval-style win rate and length-controlled win rate;
- IFEval (eval.ifeval_prompts) and reward-modeling agreement (eval.reward_data) per model.

Stages of the older model that do not depend on the judge (its answers, its IFEval score, its
own judging ability) are read from where they were made when it was the newer model, so
nothing is generated twice.
"""

from __future__ import annotations

from statistics import mean

from autoalign.config import EvalConfig, JudgeConfig
from autoalign.data.ranked import load_ranked
from autoalign.eval import suite
from autoalign.verifiers.ifeval import load_ifeval
from autoalign.runtime.pool import AnyModelRef, ModelRef
from autoalign.judges.base import JudgeFactory
from autoalign.stages.judging import judge_candidates, judgment_metrics
from autoalign.stages.common import StageContext
from autoalign.types import Judgment, Prompt


def compare_models(
    at: StageContext,
    new: ModelRef,
    old: ModelRef,
    judge_model: AnyModelRef,
    prompts: list[Prompt],
    cfg: EvalConfig,
    judge_cfg: JudgeConfig,
    make_judge: JudgeFactory,
    *,
    old_at: StageContext | None = None,
    held_out: list[str] = (),
) -> dict:
    """new's stages go to `at`; old's judge-independent stages are read from old_at, where old was
    evaluated as the newer model (or, for M1, the shared store of a comparison); its verdicts
    under this iteration's judge go to old_at's store at this iteration. held_out: constraint
    types never trained on, which the paired IFEval comparison reports apart."""
    old_at = old_at or at
    prompts = prompts[: cfg.num_prompts]
    located = {new.label: at, old.label: old_at}
    judged_in = {new.label: at, old.label: old_at.at_iteration(at.t)}
    answers, verdicts = {}, {}
    for ref in (new, old):
        label = ref.label
        answers[label] = suite.answers(located[label], ref, prompts, cfg.sampling, name=f"eval_answers_{label}")
        as_candidates = {pid: [c] for pid, c in answers[label].items()}
        verdicts[label] = judge_candidates(
            judged_in[label],
            judge_model,
            prompts,
            as_candidates,
            judge_cfg,
            make_judge,
            name=f"eval_judgments_{label}",
            kind="eval_judgments",
        )
    new_j = [verdicts[new.label][p.id][0] for p in prompts]
    old_j = [verdicts[old.label][p.id][0] for p in prompts]
    inputs = [new.key, old.key, *[str(j.to_dict()) for j in new_j + old_j]]

    def compare() -> tuple[list[dict], dict]:
        rows = [
            {
                "id": p.id,
                "prompt": p.messages,
                new.label: answers[new.label][p.id].text,
                old.label: answers[old.label][p.id].text,
                f"{new.label}_judgment": new_j[i].to_dict(),
                f"{old.label}_judgment": old_j[i].to_dict(),
            }
            for i, p in enumerate(prompts)
        ]
        metrics = {
            "new": new.label,
            "old": old.label,
            "judge": judge_model.label,
            **score_comparison(new_j, old_j),
            "new_judging": judgment_metrics(new_j),
            "old_judging": judgment_metrics(old_j),
        }
        return rows, metrics

    stage = at.stage("eval", {"cfg": cfg.key(), "judge": judge_model.key}, inputs).ensure(compare)
    if cfg.pairwise:
        pair = {new.label: answers[new.label], old.label: answers[old.label]}
        suite.head_to_head(at, prompts, pair, judge_model, judge_cfg)
    if cfg.ifeval_prompts:
        items = load_ifeval(cfg.ifeval_file)[: cfg.ifeval_prompts]
        for ref in (new, old):
            suite.ifeval(located[ref.label], ref, items, cfg.ifeval_sampling)
        scored = {ref.label: suite.ifeval_rows(located[ref.label], ref.label) for ref in (new, old)}
        suite.ifeval_paired(at, (new.label, scored[new.label]), (old.label, scored[old.label]), list(held_out))
    if cfg.reward_data:
        groups = load_ranked(cfg.reward_data)
        for ref in (new, old):
            suite.reward_modeling(located[ref.label], ref, groups, judge_cfg, make_judge, pooled=cfg.reward_pool)
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
