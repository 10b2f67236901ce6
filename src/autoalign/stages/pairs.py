"""Stages that turn feedback into preference pairs, one per policy, plus the stage that mixes
the pairs of several feedback sources into the DPO training set (iter_t/pairs)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from autoalign.config import JudgeConfig, PairsConfig
from autoalign.judges.pairwise import PairwiseItem, PairwiseJudgeFactory
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, candidates_per_prompt, first_error, once, run_items
from autoalign.pairs import Comparison, JudgedCandidates, best_vs_worst, demonstration_pairs, pairwise_best_vs_worst
from autoalign.types import Candidate, Judgment, Pair, Preference, Prompt


def _pair_metrics(prompts: int, pairs: list[Pair], dropped: Counter) -> dict:
    margins = [p.margin for p in pairs if p.margin is not None]
    return {
        "prompts": prompts,
        "pairs": len(pairs),
        "dropped": dict(dropped),
        "mean_margin": sum(margins) / len(margins) if margins else None,
    }


def pairs_stage(
    at: StageContext,
    source: str,
    build: Callable[[], tuple[list[Pair], Counter]],
    *,
    config: dict,
    inputs: list[str],
    prompts: int,
) -> list[Pair]:
    """iter_t/pairs_<source>: `build` runs only when the stage is not already done. It returns
    (pairs, dropped counts) or (pairs, dropped counts, more metrics)."""

    def built() -> tuple[list[dict], dict]:
        pairs, dropped, *more = build()
        return [p.to_dict() for p in pairs], {**_pair_metrics(prompts, pairs, dropped), **(more[0] if more else {})}

    stage = at.stage(f"pairs_{source}", {"source": source, **config}, inputs, kind="source_pairs").ensure(built)
    return [Pair.from_dict(r) for r in stage.rows()]


def best_vs_worst_pairs(
    at: StageContext,
    prompts: list[Prompt],
    candidates: dict[str, list[Candidate]],
    judgments: dict[str, list[Judgment]],
    cfg: PairsConfig,
    *,
    source: str,
) -> list[Pair]:
    groups = [JudgedCandidates(p, candidates[p.id], judgments[p.id]) for p in prompts]
    inputs = [p.id + str([c.text for c in candidates[p.id]]) + str([j.score for j in judgments[p.id]]) for p in prompts]
    build = lambda: best_vs_worst(groups, cfg.min_margin, source)
    return pairs_stage(at, source, build, config={"cfg": cfg.key()}, inputs=inputs, prompts=len(groups))


def reference_pairs(
    at: StageContext,
    prompts: list[Prompt],
    references: dict[str, Candidate],
    students: dict[str, list[Candidate]],
    *,
    source: str,
    min_chars: int,
) -> list[Pair]:
    """Chosen = reference (teacher answer or gold answer), rejected = student sample."""
    inputs = [p.id + str(references[p.id].to_dict()) + str([c.text for c in students.get(p.id, [])]) for p in prompts]
    build = lambda: demonstration_pairs(prompts, references, students, source, min_chars)
    return pairs_stage(at, source, build, config={"min_chars": min_chars}, inputs=inputs, prompts=len(prompts))


def compare_candidates(
    at: StageContext,
    judge_model: AnyModelRef,
    prompts: list[Prompt],
    candidates: dict[str, list[Candidate]],
    cfg: JudgeConfig,
    name: str = "comparisons",
) -> dict[str, list[Comparison]]:
    """Round-robin pairwise verdicts on each prompt's candidates, each asked in both orders."""
    inputs = [judge_model.key, *[p.id + p.text + "".join(c.text for c in candidates[p.id]) for p in prompts]]
    make_judge = PairwiseJudgeFactory(at.pool)
    stage = at.stage(name, {"cfg": cfg.key(), "seed": at.seed, "judge": make_judge.key}, inputs)
    by_id = {p.id: p for p in prompts}
    judge_once = once(lambda: make_judge(judge_model, cfg, at.seed))

    def process(ids: list[str]) -> list[dict]:
        judge = judge_once()
        jobs = [
            (pid, i, j) for pid in ids for i in range(len(candidates[pid])) for j in range(i + 1, len(candidates[pid]))
        ]
        items = [
            PairwiseItem(by_id[pid].messages, candidates[pid][i].text, candidates[pid][j].text) for pid, i, j in jobs
        ]
        out = {pid: [] for pid in ids}
        for (pid, i, j), pref in zip(jobs, judge.compare(items) if items else []):
            out[pid].append({"first": i, "second": j, "preference": pref.to_dict()})
        return [{"id": pid, "comparisons": out[pid]} for pid in ids]

    def summarize(rows: list[dict], seconds: float) -> dict:
        prefs = [Preference.from_dict(c["preference"]) for r in rows for c in r["comparisons"]]
        winners = Counter(str(p.winner) for p in prefs)
        return {
            "judge": judge_model.label,
            "comparisons": len(prefs),
            "consistent": winners["first"] + winners["second"],
            "order_inconsistent": winners["tie"],
            "unparsed": winners["None"],
            "consistency_rate": (winners["first"] + winners["second"]) / max(1, len(prefs) - winners["None"]),
            "failed": sum(p.error is not None for p in prefs),
        }

    error_of = lambda row: first_error(c["preference"]["error"] for c in row["comparisons"])
    chunk = max(1, cfg.sampling.batch_size // 4)
    n = candidates_per_prompt(prompts, candidates)
    per_item = max(1.0, n * (n - 1) / 2) * 2  # every pair of candidates, in both orders
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
    )
    return {
        r["id"]: [Comparison(c["first"], c["second"], Preference.from_dict(c["preference"])) for c in r["comparisons"]]
        for r in rows
    }


def pairwise_pairs(
    at: StageContext,
    prompts: list[Prompt],
    candidates: dict[str, list[Candidate]],
    comparisons: dict[str, list[Comparison]],
    *,
    source: str,
) -> list[Pair]:
    inputs = [
        p.id
        + str([c.text for c in candidates[p.id]])
        + str([(c.first, c.second, c.preference.winner) for c in comparisons[p.id]])
        for p in prompts
    ]

    def build() -> tuple[list[Pair], Counter]:
        pairs, dropped = [], Counter()
        for p in prompts:
            pair, reason = pairwise_best_vs_worst(p, candidates[p.id], comparisons[p.id], source)
            if pair is None:
                dropped[reason] += 1
            else:
                pairs.append(pair)
        return pairs, dropped

    return pairs_stage(at, source, build, config={"mode": "pairwise"}, inputs=inputs, prompts=len(prompts))


def mix_pairs(at: StageContext, by_source: dict[str, list[Pair]], weights: dict[str, float]) -> list[Pair]:
    """The DPO training set: every source's pairs, each carrying its source's weight."""
    inputs = [f"{source}:{weights[source]}:{[p.to_dict() for p in pairs]}" for source, pairs in by_source.items()]

    def build() -> tuple[list[dict], dict]:
        mixed = [replace(p, weight=p.weight * weights[source]) for source, pairs in by_source.items() for p in pairs]
        per_source = {s: at.store.metrics(at.t, f"pairs_{s}") for s in by_source}
        single = len(by_source) == 1
        dropped = Counter()
        for s, m in per_source.items():
            dropped.update({(k if single else f"{s}/{k}"): v for k, v in m["dropped"].items()})
        margins = [p.margin for p in mixed if p.margin is not None]
        metrics = {
            "prompts": sum(m["prompts"] for m in per_source.values()),
            "pairs": len(mixed),
            "dropped": dict(dropped),
            "by_source": {s: len(pairs) for s, pairs in by_source.items()},
            "weights": weights,
            "mean_margin": sum(margins) / len(margins) if margins else None,
        }
        return [p.to_dict() for p in mixed], metrics

    return [Pair.from_dict(r) for r in at.stage("pairs", {"weights": weights}, inputs).ensure(build).rows()]
