"""Weak-to-strong generalisation (Burns et al. 2023, "Weak-to-Strong Generalization: Eliciting
Strong Capabilities With Weak Supervision"), on preference comparisons a program can check:

    comparisons     two of the run model's answers to a synthesised verifiable prompt that the
                    IFEval checkers score differently (the truth), shown in random order, split
                    into test / strong-train / weak-train
    weak labels     the weak supervisor on strong-train: the run model as a pairwise judge (both
                    orders; its p_first is the soft label), or a small reward model trained on
                    the truth of weak-train (w2s.weak: reward_model)
    strong_on_weak  a reward model on the strong base trained on the weak labels
    ceiling         the same trained on the truth
    confidence      strong_on_weak with the auxiliary confidence loss (w2s.confidence_alpha > 0)
    PGR             (strong_on_weak - weak) / (ceiling - weak) on test, with a paired bootstrap

Run it:  autoalign w2s recipes/w2s.yaml
"""

from __future__ import annotations

import math

from autoalign.config import ConfigError, RunConfig
from autoalign.eval.w2s import bootstrap_pgr, credit
from autoalign.judges.pairwise import PairwiseItem, PairwiseJudgeFactory
from autoalign.loops import verified
from autoalign.loops.context import RunContext, build_context, writing_run_dir
from autoalign.runtime.pool import ModelRef
from autoalign.stages.common import StageContext, first_error, once, run_items
from autoalign.stages.critic import LabelledPair, ranked_slice
from autoalign.stages.reward_model import reward_model_stage
from autoalign.store import content_key
from autoalign.train.reward_model import Comparison
from autoalign.types import Preference, Prompt, RankedGroup

SPLITS = ("test", "strong_train", "weak_train")


def comparisons(ctx: RunContext, m0: ModelRef) -> dict[str, list[dict]]:
    """split -> rows {id, prompt, first, second, truth}: stage iter_1/w2s_comparisons."""
    cfg = ctx.cfg.w2s
    sizes = {"test": cfg.test_pairs, "strong_train": cfg.train_pairs}
    if cfg.weak == "reward_model":
        sizes["weak_train"] = cfg.weak_train_pairs
    items, candidates, _tasks, critiques = verified.judged(ctx, 1, m0)

    def build() -> tuple[list[dict], dict]:
        groups = [
            RankedGroup(item.prompt, [c.text for c in candidates[item.key]], [c.score for c in critiques[item.key]])
            for item in items
        ]
        pairs = one_per_prompt(groups, ctx.seed)
        if len(pairs) < sum(sizes.values()):
            raise ConfigError(
                f"w2s needs {sum(sizes.values())} comparisons with known truth ({sizes}) but the "
                f"{len(items)} verifiable prompts gave {len(pairs)}: raise verifiable.num_prompts or sample.n"
            )
        rows, start = [], 0
        for split, size in sizes.items():
            for p in pairs[start : start + size]:
                rows.append(
                    {
                        "id": p.id,
                        "split": split,
                        "prompt": p.item.prompt,
                        "first": p.item.first,
                        "second": p.item.second,
                        "truth": p.truth,
                    }
                )
            start += size
        return rows, {"available": len(pairs), **{f"{s}_pairs": n for s, n in sizes.items()}}

    inputs = [
        item.key + str([c.text for c in candidates[item.key]]) + str([c.score for c in critiques[item.key]])
        for item in items
    ]
    stage = ctx.at(1).stage("w2s_comparisons", {"sizes": sizes}, inputs, kind="w2s_comparisons").ensure(build)
    out = {split: [] for split in sizes}
    for row in stage.rows():
        out[row["split"]].append(row)
    return out


def one_per_prompt(groups: list[RankedGroup], seed: int) -> list[LabelledPair]:
    """The best vs the worst answer of each prompt whose answers the checkers tell apart (one
    comparison per prompt, so the splits share no prompt), in random order and position."""
    best_worst = []
    for g in groups:
        if len(g.gold) >= 2 and max(g.gold) > min(g.gold):
            hi, lo = g.gold.index(max(g.gold)), g.gold.index(min(g.gold))
            best_worst.append(RankedGroup(g.prompt, [g.responses[hi], g.responses[lo]], [1.0, 0.0]))
    return ranked_slice(best_worst, len(best_worst), seed)


def as_comparison(row: dict, target: float) -> Comparison:
    return Comparison(row["prompt"], row["first"], row["second"], target)


def truth_target(row: dict) -> float:
    return 1.0 if row["truth"] == "first" else 0.0


def judge_labels(at: StageContext, judge_model: ModelRef, rows: list[dict], ctx: RunContext) -> dict[str, Preference]:
    """The run model's pairwise verdicts (both orders) on the rows: stage w2s_weak_judge."""
    by_id = {r["id"]: r for r in rows}
    make_judge = PairwiseJudgeFactory(ctx.pool)
    inputs = [judge_model.key, make_judge.key, *[r["id"] + r["first"] + r["second"] for r in rows]]
    stage = at.stage("w2s_weak_judge", {"judge": ctx.cfg.judge.key(), "seed": at.seed}, inputs, kind="w2s_weak")
    judge_once = once(lambda: make_judge(judge_model, ctx.cfg.judge, at.seed))

    def process(ids: list[str]) -> list[dict]:
        items = [PairwiseItem(by_id[i]["prompt"], by_id[i]["first"], by_id[i]["second"]) for i in ids]
        return [{"id": i, "preference": p.to_dict()} for i, p in zip(ids, judge_once().compare(items))]

    def summarize(done: list[dict], seconds: float) -> dict:
        prefs = [Preference.from_dict(r["preference"]) for r in done]
        return {
            "judge": judge_model.label,
            "items": len(prefs),
            "seconds": seconds,
            "unparsed": sum(p.winner is None for p in prefs),
            "ties": sum(p.winner == "tie" for p in prefs),
        }

    error_of = lambda row: first_error([row["preference"]["error"]])
    prompts = [Prompt(id=r["id"], messages=r["prompt"]) for r in rows]
    chunk = max(1, ctx.cfg.judge.sampling.batch_size // 2)
    done = run_items(
        at, stage, prompts, process, summarize, error_of, chunk_size=chunk, model=judge_model, requests_per_item=2
    )
    return {r["id"]: Preference.from_dict(r["preference"]) for r in done}


def weak_supervision(ctx: RunContext, m0: ModelRef, data: dict[str, list[dict]]) -> tuple[dict, dict]:
    """(soft labels on strong_train by id, credit on test by id)."""
    cfg, at = ctx.cfg.w2s, ctx.at(1)
    labelled = data["strong_train"] + data["test"]
    truth = {r["id"]: r["truth"] for r in labelled}
    if cfg.weak == "judge":
        prefs = judge_labels(at, m0, labelled, ctx)
        soft = {i: p.p_first if p.p_first is not None else 0.5 for i, p in prefs.items()}
        winners = {i: p.winner for i, p in prefs.items()}
        return (
            {r["id"]: soft[r["id"]] for r in data["strong_train"]},
            {r["id"]: credit(winners[r["id"]], truth[r["id"]]) for r in data["test"]},
        )
    train = [as_comparison(r, truth_target(r)) for r in data["weak_train"]]
    margins = reward_model_stage(
        at, "w2s_weak_rm", cfg.weak_model, train, {r["id"]: as_comparison(r, 0.5) for r in labelled}, cfg.train
    )
    sigmoid = lambda m: 1 / (1 + math.exp(-m))
    return (
        {r["id"]: sigmoid(margins[r["id"]]) for r in data["strong_train"]},
        {r["id"]: credit(margins[r["id"]], truth[r["id"]]) for r in data["test"]},
    )


def run_w2s(ctx: RunContext, m0: ModelRef) -> dict:
    cfg, at = ctx.cfg.w2s, ctx.at(1)
    data = comparisons(ctx, m0)
    weak_targets, weak_credit = weak_supervision(ctx, m0, data)
    ctx.pool.release()  # the generation engine's memory, before training
    test = {r["id"]: as_comparison(r, 0.5) for r in data["test"]}
    truth = {r["id"]: r["truth"] for r in data["test"]}
    train_rows = data["strong_train"]
    students = {
        "strong_on_weak": ([as_comparison(r, weak_targets[r["id"]]) for r in train_rows], 0.0),
        "ceiling": ([as_comparison(r, truth_target(r)) for r in train_rows], 0.0),
    }
    if cfg.confidence_alpha:
        students["strong_on_weak_confidence"] = (students["strong_on_weak"][0], cfg.confidence_alpha)
    credits = {"weak": [weak_credit[i] for i in sorted(test)]}
    for name, (train, alpha) in students.items():
        margins = reward_model_stage(at, f"w2s_{name}", cfg.strong_model, train, test, cfg.train, alpha)
        credits[name] = [credit(margins[i], truth[i]) for i in sorted(test)]

    def build() -> tuple[list[dict], dict]:
        results = {
            "plain": bootstrap_pgr(
                credits["weak"], credits["strong_on_weak"], credits["ceiling"], cfg.bootstrap, ctx.seed
            )
        }
        if "strong_on_weak_confidence" in credits:
            results["confidence"] = bootstrap_pgr(
                credits["weak"], credits["strong_on_weak_confidence"], credits["ceiling"], cfg.bootstrap, ctx.seed
            )
        weak_name = m0.label + " judge" if cfg.weak == "judge" else f"{cfg.weak_model} reward model"
        return [], {
            "weak": weak_name,
            "strong": cfg.strong_model,
            "results": results,
            "weak_label_agreement": label_agreement(weak_targets, train_rows),
        }

    inputs = [content_key(credits)]
    return at.stage("w2s_result", {"bootstrap": cfg.bootstrap}, inputs, kind="w2s_result").ensure(build).metrics()


def label_agreement(weak_targets: dict[str, float], rows: list[dict]) -> float:
    """How often the weak labels the student trains on agree with the truth (ties: half)."""
    return sum(credit(weak_targets[r["id"]] - 0.5, r["truth"]) for r in rows) / max(1, len(rows))


def run(cfg: RunConfig, log=print) -> dict:
    """Checks the recipe and its data, writes runs/<name>/config.yaml, then the stages above."""
    verified.check_config(cfg)
    ctx, m0 = build_context(cfg, log)
    try:
        with writing_run_dir(cfg, log):
            return run_w2s(ctx, m0)
    finally:
        ctx.pool.close()
