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
from autoalign.verifiers.ifeval import SCORER_VERSION, IFEvalPrompt, accuracy, score_response
from autoalign.eval.reward_modeling import agreement_metrics, pool_groups
from autoalign.eval.win_rate import length_controlled_win_rate, preference_value, win_rate
from autoalign.judges.pairwise import PairwiseItem, PairwiseJudgeFactory
from autoalign.runtime.pool import AnyModelRef
from autoalign.eval.paired import ifeval_paired_metrics
from autoalign.stages.common import StageContext, once, run_items
from autoalign.store import recorded_stages
from autoalign.judges.base import JudgeFactory
from autoalign.stages.judging import judge_candidates
from autoalign.stages.sampling import sample_candidates
from autoalign.types import Candidate, Preference, Prompt, RankedGroup


def answers(
    at: StageContext,
    model: AnyModelRef,
    prompts: list[Prompt],
    sampling: SamplingConfig,
    *,
    name: str,
    kind: str = "answers",
) -> dict[str, Candidate]:
    """A model's answer to each prompt (one sample, no control instruction): {prompt id: Candidate}."""
    cfg = SampleConfig(n=1, control_instruction=False, sampling=sampling)
    return {pid: cands[0] for pid, cands in sample_candidates(at, model, prompts, cfg, name=name, kind=kind).items()}


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
    at: StageContext,
    prompts: list[Prompt],
    answers_of: dict[str, dict[str, Candidate]],
    judge_model: AnyModelRef,
    cfg: JudgeConfig,
    *,
    name: str = "eval_h2h",
) -> dict:
    """answers_of: {model label: answers, baseline label: answers}, the model first."""
    (model_label, model_answers), (baseline_label, baseline_answers) = answers_of.items()
    inputs = [
        judge_model.key,
        *[p.id + p.text + model_answers[p.id].text + "\x00" + baseline_answers[p.id].text for p in prompts],
    ]
    make_judge = PairwiseJudgeFactory(at.pool)
    stage = at.stage(name, {"cfg": cfg.key(), "seed": at.seed, "judge": make_judge.key}, inputs, kind="head_to_head")
    by_id = {p.id: p for p in prompts}
    judge_once = once(lambda: make_judge(judge_model, cfg, at.seed))

    def process(ids: list[str]) -> list[dict]:
        judge = judge_once()
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

    def summarize(rows: list[dict], seconds: float) -> dict:
        prefs = [Preference.from_dict(r["preference"]) for r in rows]
        chars = lambda label: [len(r[label]) for r in rows]
        metrics = head_to_head_metrics(prefs, chars(model_label), chars(baseline_label))
        return {"model": model_label, "baseline": baseline_label, "judge": judge_model.label, **metrics}

    def error_of(row: dict) -> str | None:
        # A comparison of a failed answer is not the judge's failure: retrying the judge cannot help.
        error = row["preference"]["error"]
        return None if " answer failed: " in (error or "") else error

    chunk = max(1, cfg.sampling.batch_size // 2)
    run_items(
        at, stage, prompts, process, summarize, error_of, chunk_size=chunk, model=judge_model, requests_per_item=2
    )
    return stage.metrics()


def ifeval(
    at: StageContext,
    model: AnyModelRef,
    items: list[IFEvalPrompt],
    sampling: SamplingConfig,
    *,
    kind: str = "ifeval",
) -> dict:
    """Answers in stage <kind>_answers_<label>, scores in <kind>_<label> (kind "ifeval" for each
    iteration's slice, "ifeval_final" for the loop's last model and M1 on the larger final set)."""
    prompts = [item.to_prompt() for item in items]
    replies = answers(at, model, prompts, sampling, name=f"{kind}_answers_{model.label}", kind=f"{kind}_answers")
    inputs = [f"{item.key}{item.instruction_ids}{item.kwargs}" + replies[p.id].text for item, p in zip(items, prompts)]

    def score() -> tuple[list[dict], dict]:
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
        metrics = {
            "model": model.label,
            **accuracy(results, items),
            "failed_answers": sum(replies[p.id].finish_reason == "error" for p in prompts),
            "truncated_answers": sum(replies[p.id].finish_reason == "length" for p in prompts),
        }
        return rows, metrics

    stage = at.stage(f"{kind}_{model.label}", {"scorer": SCORER_VERSION}, inputs, kind=kind)
    return stage.ensure(score).metrics()


def ifeval_rows(at: StageContext, label: str, kind: str = "ifeval") -> list[dict]:
    """The scored IFEval answers of a model, from where its ifeval stage (of this kind) was recorded."""
    found = [r for r in recorded_stages(at.store.root, at.t, kind) if r.metrics().get("model") == label]
    return found[0].rows() if found else []


def ifeval_paired(
    at: StageContext,
    model: tuple[str, list[dict]],
    baseline: tuple[str, list[dict]],
    held_out: list[str],
    *,
    name: str = "ifeval_paired",
) -> dict:
    """The model against the baseline on the same IFEval prompts, paired per prompt (eval/paired.py),
    strict and loose; instruction-level accuracy on the held-out constraint types (never trained
    on) apart from the others; mean answer length. (label, scored rows of its ifeval stage) each."""
    (label, rows), (base_label, base_rows) = model, baseline
    ours, theirs = {r["id"]: r for r in rows}, {r["id"]: r for r in base_rows}
    ids = sorted(set(ours) & set(theirs))
    inputs = [f"{i}{ours[i]['strict']}{ours[i]['loose']}{theirs[i]['strict']}{theirs[i]['loose']}" for i in ids]

    def compare() -> tuple[None, dict]:
        return None, {"model": label, "baseline": base_label, **ifeval_paired_metrics(rows, base_rows, held_out)}

    config = {"held_out": sorted(held_out)}
    stage = at.stage(f"{name}_{label}_vs_{base_label}", config, inputs, kind="ifeval_paired")
    return stage.ensure(compare).metrics()


def reward_modeling(
    at: StageContext,
    judge_model: AnyModelRef,
    groups: list[RankedGroup],
    cfg: JudgeConfig,
    make_judge: JudgeFactory,
    *,
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
    name = f"rm_judgments_{judge_model.label}"
    verdicts = judge_candidates(at, judge_model, prompts, candidates, cfg, make_judge, name=name, kind="rm_judgments")
    scores = [[j.score for j in verdicts[p.id]] for p in prompts]

    def agreement() -> tuple[None, dict]:
        scored_groups, group_scores = pool_groups(groups, scores) if pooled else (groups, scores)
        return None, {"judge": judge_model.label, "pooled": pooled, **agreement_metrics(scored_groups, group_scores)}

    inputs = [str(g.gold) for g in groups] + [str(s) for s in scores]
    stage = at.stage(f"reward_modeling_{judge_model.label}", {"pooled": pooled}, inputs, kind="reward_modeling")
    return stage.ensure(agreement).metrics()
