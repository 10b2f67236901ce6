"""Stages of the routed critic (loops/critic.py): the critic's verdicts with their uncertainty,
the calibration of its trust threshold on pairs whose truth is known, and the routing of each
item to trust, a stronger critic, or a person."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass

from autoalign.config import CriticConfig
from autoalign.config.oversight import RewardCriticConfig
from autoalign.judges.critic import CriticVerdict, reward_verdict
from autoalign.judges.pairwise import PairwiseItem
from autoalign.judges.routing import (
    Calibration,
    Router,
    calibrate,
    combined_uncertainty,
    coverage_error_curve,
    make_router,
    route_shares,
)
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, first_error, once, run_items
from autoalign.stages.reward_model import reward_model_stage
from autoalign.train.reward_model import Comparison
from autoalign.types import Prompt, RankedGroup

NOT_READ_BY_CRITIQUES = (
    "signals",
    "target_error",
    "calibration_file",
    "calibration_pairs",
    "trust_bound",
    "human_share",
    "kind",
    "reward_model",
)


@dataclass(frozen=True)
class LabelledPair:
    """A calibration item: two answers and which one is truly better ("first" or "second")."""

    id: str
    item: PairwiseItem
    truth: str
    group: int = -1
    """Index of the ranked group (prompt) it comes from, so other pairs can avoid its prompt."""


def critique_items(
    at: StageContext,
    critic_model: AnyModelRef,
    items: dict[str, PairwiseItem],
    cfg: CriticConfig,
    make_critic,
    *,
    name: str = "critic_verdicts",
) -> dict[str, CriticVerdict]:
    """The critic's verdict and uncertainty signals on every item (id -> two answers to compare)."""
    inputs = [
        critic_model.key,
        make_critic.key,
        *[i + json.dumps(item.__dict__, sort_keys=True) for i, item in items.items()],
    ]
    config = {"cfg": cfg.key_without(*NOT_READ_BY_CRITIQUES), "seed": at.seed}
    stage = at.stage(name, config, inputs, kind="critic_verdicts")
    critic_once = once(lambda: make_critic(critic_model, cfg, at.seed))

    def process(ids: list[str]) -> list[dict]:
        verdicts = critic_once().review([items[i] for i in ids])
        return [{"id": i, "verdict": v.to_dict()} for i, v in zip(ids, verdicts)]

    def summarize(rows: list[dict], seconds: float) -> dict:
        verdicts = [CriticVerdict.from_dict(r["verdict"]) for r in rows]
        winners = Counter(str(v.winner) for v in verdicts)
        outputs = sum(sum(v.votes.values()) for v in verdicts)
        return {
            "critic": critic_model.label,
            "items": len(verdicts),
            "winners": dict(winners),
            "verdict_parse_rate": 1 - sum(v.votes["none"] for v in verdicts) / max(1, outputs),
            "seconds": seconds,
        }

    prompts = [Prompt(id=i, messages=item.prompt) for i, item in items.items()]
    error_of = lambda row: first_error([row["verdict"]["error"]])
    chunk = max(1, cfg.sampling.batch_size // 2)
    rows = run_items(
        at, stage, prompts, process, summarize, error_of, chunk_size=chunk, model=critic_model, requests_per_item=2
    )
    return {r["id"]: CriticVerdict.from_dict(r["verdict"]) for r in rows}


def reward_model_verdicts(
    at: StageContext,
    cfg: RewardCriticConfig,
    base: str,
    train: list[LabelledPair],
    items: dict[str, PairwiseItem],
    slice_: list[LabelledPair],
) -> tuple[dict[str, CriticVerdict], dict[str, CriticVerdict]]:
    """The reward-model critic (stage iter_t/critic_reward_model): trained on `train`'s truth, its
    verdicts on the items to route and on the calibration slice."""
    truth = [Comparison(p.item.prompt, p.item.first, p.item.second, float(p.truth == "first")) for p in train]
    score = {f"item:{i}": Comparison(item.prompt, item.first, item.second, 0.5) for i, item in items.items()}
    score |= {f"calibration:{p.id}": Comparison(p.item.prompt, p.item.first, p.item.second, 0.5) for p in slice_}
    margins = reward_model_stage(at, "critic_reward_model", base, truth, score, cfg.train, kind="critic_verdicts")
    verdicts = {i: reward_verdict(margins[f"item:{i}"]) for i in items}
    return verdicts, {p.id: reward_verdict(margins[f"calibration:{p.id}"]) for p in slice_}


def uncertainty(verdict: CriticVerdict, signals: list[str]) -> float:
    """The chosen signals averaged; an item with no verdict is as unsure as can be."""
    if verdict.winner is None:
        return 1.0
    return combined_uncertainty({name: verdict.signals.get(name) for name in signals})


def ranked_slice(groups: list[RankedGroup], size: int, seed: int) -> list[LabelledPair]:
    """Every pair of differently scored responses to one prompt, the better one shown first or
    second at random (a critic that always picks one position must not look right), then a
    seeded sample of `size`."""
    rng = random.Random(seed)
    pairs = []
    for g, group in enumerate(groups):
        for i in range(len(group.responses)):
            for j in range(i + 1, len(group.responses)):
                if group.gold[i] == group.gold[j]:
                    continue
                better, worse = (i, j) if group.gold[i] > group.gold[j] else (j, i)
                pairs.append((g, better, worse))
    rng.shuffle(pairs)
    out = []
    for g, better, worse in pairs[:size]:
        group = groups[g]
        prompt = [{"role": "user", "content": group.prompt}]
        swap = rng.random() < 0.5
        first, second = (worse, better) if swap else (better, worse)
        item = PairwiseItem(prompt, group.responses[first], group.responses[second])
        out.append(LabelledPair(f"cal{g}_{first}_{second}", item, "second" if swap else "first", g))
    return out


def calibrate_critic(
    at: StageContext, slice_: list[LabelledPair], verdicts: dict[str, CriticVerdict], cfg: CriticConfig
) -> dict:
    """iter_t/critic_calibration: the trust threshold for cfg.target_error on the slice, the
    coverage/error curve, the same per signal alone, and a two-fold cross-fitted estimate (the
    threshold set on one half, measured on the other) of what the threshold does on new items."""

    def build() -> tuple[list[dict], dict]:
        rows = []
        for pair in slice_:
            verdict = verdicts[pair.id]
            rows.append(
                {
                    "id": pair.id,
                    "truth": pair.truth,
                    "winner": verdict.winner,
                    "correct": verdict.winner == pair.truth,
                    "uncertainty": uncertainty(verdict, cfg.signals),
                    "signals": verdict.signals,
                    "shorter_is_better": shorter_is_better(pair),
                }
            )
        return rows, calibration_metrics(rows, cfg, at.seed)

    inputs = [json.dumps([p.id, p.truth, verdicts[p.id].to_dict()], sort_keys=True) for p in slice_]
    config = {"signals": cfg.signals, "target_error": cfg.target_error, "trust_bound": cfg.trust_bound}
    return at.stage("critic_calibration", config, inputs, kind="critic_calibration").ensure(build).metrics()


def calibration_metrics(rows: list[dict], cfg: CriticConfig, seed: int) -> dict:
    if not rows:
        raise ValueError("the critic's calibration slice is empty: no pair with known truth to calibrate on")
    values, correct = [r["uncertainty"] for r in rows], [r["correct"] for r in rows]
    chosen = calibrate(values, correct, cfg.target_error, cfg.trust_bound)
    per_signal = {}
    for name in cfg.signals:
        alone = [uncertainty_alone(r, name) for r in rows]
        point = calibrate(alone, correct, cfg.target_error, cfg.trust_bound)
        per_signal[name] = {"coverage": point.coverage, "error": point.error}
    return {
        "slice": len(rows),
        "accuracy": sum(correct) / len(rows),
        "target_error": cfg.target_error,
        "trust_bound": cfg.trust_bound,
        "trust_threshold": chosen.trust_threshold,
        "coverage": chosen.coverage,
        "error": chosen.error,
        "error_interval": list(chosen.error_interval),
        "cross_fitted": cross_fitted(values, correct, cfg.target_error, seed, cfg.trust_bound),
        "curve": [p.__dict__ for p in coverage_error_curve(values, correct)],
        "per_signal": per_signal,
        "length": length_check(rows),
    }


def shorter_is_better(pair: LabelledPair) -> bool | None:
    """Whether the truly better answer is the shorter one (None: equally long)."""
    first, second = len(pair.item.first), len(pair.item.second)
    if first == second:
        return None
    return (first < second) == (pair.truth == "first")


def length_check(rows: list[dict]) -> dict:
    """Length is the shortcut a critic learns first (a truncated answer fails checks, a longer one
    looks thorough): how right "the shorter answer is better" is on the slice, and the critic's
    accuracy apart where it holds and where it does not. A critic that only reads length is
    right on the first and wrong on the second."""
    known = [r for r in rows if r.get("shorter_is_better") is not None]
    shorter = [r["correct"] for r in known if r["shorter_is_better"]]
    longer = [r["correct"] for r in known if not r["shorter_is_better"]]
    share = lambda xs: sum(xs) / len(xs) if xs else None
    return {
        "shorter_is_better": share([r["shorter_is_better"] for r in known]),
        "critic_where_shorter_is_better": share(shorter),
        "critic_where_longer_is_better": share(longer),
        "pairs": [len(shorter), len(longer)],
    }


def uncertainty_alone(row: dict, name: str) -> float:
    value = row["signals"].get(name)
    return 1.0 if row["winner"] is None or value is None else value


def cross_fitted(
    values: list[float], correct: list[bool], target_error: float, seed: int, bound="point", repeats: int = 100
) -> dict:
    """Two folds, `repeats` random splits: each fold's items routed by the threshold calibrated on
    the other fold; the mean share trusted and the error pooled over every trusted item (an honest
    estimate: the in-slice figures choose the threshold that looks best on the very items they are
    measured on; one split of a few dozen items alone swings by several points)."""
    rng = random.Random(seed)
    order = list(range(len(values)))
    trusted = wrong = 0
    for _ in range(repeats):
        rng.shuffle(order)
        folds = [order[: len(order) // 2], order[len(order) // 2 :]]
        for k in (0, 1):
            fit, held = folds[1 - k], folds[k]
            if not fit or not held:
                continue
            threshold = calibrate(
                [values[i] for i in fit], [correct[i] for i in fit], target_error, bound
            ).trust_threshold
            kept = [i for i in held if threshold is not None and values[i] <= threshold]
            trusted += len(kept)
            wrong += sum(not correct[i] for i in kept)
    return {
        "coverage": trusted / (repeats * len(values)),
        "error": wrong / trusted if trusted else None,
        "trusted": trusted / repeats,
        "repeats": repeats,
    }


def route_items(
    at: StageContext,
    verdicts: dict[str, CriticVerdict],
    calibration: dict,
    cfg: CriticConfig,
    has_stronger_critic: bool,
) -> dict[str, dict]:
    """iter_t/routing: each item's uncertainty and route (trust / escalate / human), and the
    share each route gets."""

    def build() -> tuple[list[dict], dict]:
        ids = sorted(verdicts)
        values = [uncertainty(verdicts[i], cfg.signals) for i in ids]
        threshold = calibration["trust_threshold"]
        fitted = Calibration(threshold, calibration["coverage"], calibration["error"], (0.0, 1.0), calibration["slice"])
        router: Router = make_router(fitted, values, cfg.human_share, has_stronger_critic)
        rows = [{"id": i, "uncertainty": u, "route": router.route(u)} for i, u in zip(ids, values)]
        metrics = {
            "items": len(rows),
            "shares": route_shares(router, values),
            "counts": dict(Counter(r["route"] for r in rows)),
            "trust_threshold": threshold,
            # Without a stronger critic everything not trusted goes to a person: no second threshold.
            "human_threshold": router.human_threshold
            if has_stronger_critic and math.isfinite(router.human_threshold)
            else None,
            "stronger_critic": has_stronger_critic,
        }
        return rows, metrics

    inputs = [json.dumps(calibration, sort_keys=True)] + [
        i + json.dumps(verdicts[i].to_dict()) for i in sorted(verdicts)
    ]
    config = {"signals": cfg.signals, "human_share": cfg.human_share, "stronger": has_stronger_critic}
    stage = at.stage("routing", config, inputs, kind="routing").ensure(build)
    return {r["id"]: r for r in stage.rows()}
