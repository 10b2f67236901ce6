"""The evaluation suite as run stages, shared by the loops (after each iteration) and by
`autoalign eval`: every stage is cached and resumable like the rest of a run.

- answers:        a model's greedy answers to a prompt set (one stage per model and set)
- head_to_head:   model vs baseline, judged pairwise in both orders -> W/T/L, order consistency,
                  win rate and length-controlled win rate against the baseline
- ifeval:         verifiable instruction following, strict and loose, prompt and instruction level
- reward_modeling: the model as a judge of ranked responses, against the gold ranking
"""

from __future__ import annotations

from collections import Counter

from autoalign.config import JudgeConfig, SampleConfig, SamplingConfig
from autoalign.verifiers.ifeval import IFEvalPrompt, accuracy, score_response
from autoalign.eval.reward_modeling import agreement_metrics, pool_groups
from autoalign.eval.win_rate import length_controlled_win_rate, preference_value, win_rate
from autoalign.judges.pairwise import PairwiseItem, PairwiseJudgeFactory
from autoalign.runtime.pool import AnyModelRef, ModelPool
from autoalign.stages.common import remote_usage_since
from autoalign.judges.base import JudgeFactory
from autoalign.stages.judging import judge_candidates
from autoalign.stages.sampling import sample_candidates
from autoalign.store import RunStore
from autoalign.types import Candidate, Preference, Prompt, RankedGroup


def answers(
    store: RunStore,
    t: int,
    model: AnyModelRef,
    prompts: list[Prompt],
    sampling: SamplingConfig,
    pool: ModelPool,
    seed: int,
    name: str,
) -> dict[str, Candidate]:
    cfg = SampleConfig(n=1, control_instruction=False, sampling=sampling)
    return {
        pid: cands[0] for pid, cands in sample_candidates(store, t, model, prompts, cfg, pool, seed, name=name).items()
    }


def head_to_head_metrics(prefs: list[Preference], model_chars: list[int], baseline_chars: list[int]) -> dict:
    """The model was "first" in every comparison (both orders are always asked)."""
    counts = Counter(str(p.winner) for p in prefs)
    parsed = len(prefs) - counts["None"]
    values = [preference_value(p, model_is_first=True) for p in prefs]
    rate = lambda k: counts[k] / parsed if parsed else None
    return {
        "prompts": len(prefs),
        "wins": counts["first"],
        "ties": counts["tie"],
        "losses": counts["second"],
        "unparsed": counts["None"],
        "win_share": rate("first"),
        "tie_share": rate("tie"),
        "loss_share": rate("second"),
        "order_consistency": (counts["first"] + counts["second"]) / parsed if parsed else None,
        **win_rate(values),
        **{
            k: v
            for k, v in length_controlled_win_rate(values, model_chars, baseline_chars).items()
            if k not in ("n", "dropped")
        },
    }


def head_to_head(
    store: RunStore,
    t: int,
    model_label: str,
    baseline_label: str,
    prompts: list[Prompt],
    model_answers: dict[str, Candidate],
    baseline_answers: dict[str, Candidate],
    judge_model: AnyModelRef,
    cfg: JudgeConfig,
    pool: ModelPool,
    seed: int,
    name: str = "eval_h2h",
) -> dict:
    inputs = [
        judge_model.key,
        *[p.id + p.text + model_answers[p.id].text + "\x00" + baseline_answers[p.id].text for p in prompts],
    ]
    make_judge = PairwiseJudgeFactory(pool)
    stage = store.stage(t, name, {"cfg": cfg.key(), "seed": seed, "judge": make_judge.key}, inputs)
    if not stage.done():
        stage.begin()
        by_id = {p.id: p for p in prompts}
        judge = make_judge(judge_model, cfg, seed)

        def process(ids: list[str]) -> list[dict]:
            failed = {
                i: f"{who} answer failed: {a.error}"
                for i in ids
                for who, a in (("model", model_answers[i]), ("baseline", baseline_answers[i]))
                if a.finish_reason == "error"
            }
            usable = [i for i in ids if i not in failed]
            items = [PairwiseItem(by_id[i].messages, model_answers[i].text, baseline_answers[i].text) for i in usable]
            prefs = dict(zip(usable, judge.compare(items) if items else []))
            for i, reason in failed.items():
                prefs[i] = Preference(winner=None, verdicts=[None, None], raw=[], error=reason)
            return [
                {
                    "id": i,
                    "prompt": by_id[i].messages,
                    model_label: model_answers[i].text,
                    baseline_label: baseline_answers[i].text,
                    "preference": prefs[i].to_dict(),
                    "p": preference_value(prefs[i], model_is_first=True),
                }
                for i in ids
            ]

        # A comparison of a failed answer is not the judge's failure: retrying the judge cannot help.
        error_of = (
            lambda row: None if " answer failed: " in (row["preference"]["error"] or "") else row["preference"]["error"]
        )
        usage_before = pool.remote_usage()
        rows = stage.map_items(
            [p.id for p in prompts],
            process,
            chunk_size=max(1, cfg.sampling.batch_size // 2),
            desc=f"iter {t}: {model_label} vs {baseline_label} ({judge_model.label})",
            error_of=error_of,
        )
        prefs = [Preference.from_dict(r["preference"]) for r in rows]
        metrics = head_to_head_metrics(
            prefs, [len(r[model_label]) for r in rows], [len(r[baseline_label]) for r in rows]
        )
        stage.finish(
            rows,
            {
                "model": model_label,
                "baseline": baseline_label,
                "judge": judge_model.label,
                **metrics,
                **remote_usage_since(pool, usage_before),
            },
        )
    return stage.metrics()


def ifeval(
    store: RunStore,
    t: int,
    model: AnyModelRef,
    items: list[IFEvalPrompt],
    sampling: SamplingConfig,
    pool: ModelPool,
    seed: int,
) -> dict:
    """Answers in stage ifeval_answers_<label>, scores in ifeval_<label>."""
    prompts = [item.to_prompt() for item in items]
    replies = answers(store, t, model, prompts, sampling, pool, seed, name=f"ifeval_answers_{model.label}")
    inputs = [f"{item.key}{item.instruction_ids}{item.kwargs}" + replies[p.id].text for item, p in zip(items, prompts)]
    stage = store.stage(t, f"ifeval_{model.label}", {}, inputs)
    if not stage.done():
        stage.begin()
        results = [score_response(item, replies[p.id].text) for item, p in zip(items, prompts)]
        rows = [
            {
                "id": p.id,
                "prompt": item.prompt,
                "instruction_ids": item.instruction_ids,
                "response": replies[p.id].text,
                **r.to_dict(),
            }
            for item, p, r in zip(items, prompts, results)
        ]
        stage.finish(
            rows,
            {
                "model": model.label,
                **accuracy(results, items),
                "failed_answers": sum(replies[p.id].finish_reason == "error" for p in prompts),
                "truncated_answers": sum(replies[p.id].finish_reason == "length" for p in prompts),
            },
        )
    return stage.metrics()


def reward_modeling(
    store: RunStore,
    t: int,
    judge_model: AnyModelRef,
    groups: list[RankedGroup],
    cfg: JudgeConfig,
    make_judge: JudgeFactory,
    pool: ModelPool,
    seed: int,
    pooled: bool = False,
) -> dict:
    """The model scores every ranked response with the rubric; agreement with the gold ranking
    (pooled: all responses ranked as one group, for absolute gold scores)."""
    prompts = [
        Prompt(id=f"rm-{i}", messages=[{"role": "user", "content": g.prompt}], source="reward_data")
        for i, g in enumerate(groups)
    ]
    candidates = {
        p.id: [Candidate(text=r, num_tokens=0, finish_reason="stop") for r in g.responses]
        for p, g in zip(prompts, groups)
    }
    verdicts = judge_candidates(
        store,
        t,
        judge_model,
        prompts,
        candidates,
        cfg,
        make_judge,
        pool,
        seed,
        name=f"rm_judgments_{judge_model.label}",
    )
    scores = [[j.score for j in verdicts[p.id]] for p in prompts]
    stage = store.stage(
        t,
        f"reward_modeling_{judge_model.label}",
        {"pooled": pooled},
        [str(g.gold) for g in groups] + [str(s) for s in scores],
    )
    if not stage.done():
        stage.begin()
        if pooled:
            groups, scores = pool_groups(groups, scores)
        stage.finish(None, {"judge": judge_model.label, "pooled": pooled, **agreement_metrics(groups, scores)})
    return stage.metrics()
