"""How good a model is as a judge: its scores against a gold ranking.

Input: groups (one prompt with several responses) with a gold score per response (higher is
better; human ranks are turned into scores by the loaders) and the model's score, None when its
verdict did not parse. Metrics:

- coverage: share of responses with a parsed model score.
- pairwise accuracy: over all pairs within a group whose gold scores differ (gold ties have no
  order to agree with and are left out), the share the model orders the same way. A pair with an
  unparsed score is left out too and counted in `pairs_unscored` (coverage reports the failures);
  a model tie on a gold-ordered pair counts as a miss and is counted in `pairs_model_tied`.
- 5-best %: of the responses the model scored 5 (an expected score from token probabilities
  counts when it rounds to 5, i.e. >= 4.5), the share that are a gold best of their group (any
  response tied for the gold maximum counts as best).
- exact match %: groups where the model orders every pair exactly as gold does (ties included:
  both tied, or both ordered the same way); a group with an unparsed score does not match.
  Single-response groups are left out (nothing to order).
- Spearman rho and Kendall tau-b (scipy) between gold and model scores over every response
  with a parsed score, pooled across groups; tau-b corrects for ties on either side.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.stats import kendalltau, spearmanr

from autoalign.types import RankedGroup


def pool_groups(
    groups: list[RankedGroup], scores: list[list[float | None]]
) -> tuple[list[RankedGroup], list[list[float | None]]]:
    """One group of every response: for gold scores on an absolute scale (rubric scores of
    single responses), where responses to different prompts can be ordered too."""
    pooled = RankedGroup("(pooled)", [r for g in groups for r in g.responses], [s for g in groups for s in g.gold])
    return [pooled], [[s for row in scores for s in row]]


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def agreement_metrics(groups: list[RankedGroup], scores: list[list[float | None]], max_score: float = 5) -> dict:
    responses = sum(len(g.gold) for g in groups)
    parsed = sum(s is not None for row in scores for s in row)
    agree = ordered = unscored = tied = 0
    exact = orderable = 0
    best_hits = top_scored = 0
    gold_flat, model_flat = [], []
    for group, row in zip(groups, scores):
        for g, m in zip(group.gold, row):
            if m is not None:
                gold_flat.append(g)
                model_flat.append(m)
        top = max(group.gold)
        for g, m in zip(group.gold, row):
            if m is not None and m >= max_score - 0.5:
                top_scored += 1
                best_hits += g == top
        if len(row) >= 2:
            orderable += 1
            exact += None not in row and all(
                _sign(group.gold[i] - group.gold[j]) == _sign(row[i] - row[j])
                for i, j in combinations(range(len(row)), 2)
            )
        for i, j in combinations(range(len(row)), 2):
            if group.gold[i] == group.gold[j]:
                continue
            if row[i] is None or row[j] is None:
                unscored += 1
                continue
            ordered += 1
            if row[i] == row[j]:
                tied += 1
            agree += _sign(group.gold[i] - group.gold[j]) == _sign(row[i] - row[j])
    out = {
        "groups": len(groups),
        "responses": responses,
        "coverage": parsed / responses if responses else None,
        "pairs": ordered,
        "pairs_unscored": unscored,
        "pairs_model_tied": tied,
        "pairwise_accuracy": agree / ordered if ordered else None,
        "five_best": best_hits / top_scored if top_scored else None,
        "scored_five": top_scored,
        "exact_match": exact / orderable if orderable else None,
        "spearman": None,
        "kendall_tau_b": None,
    }
    # Correlations are undefined when either side is constant.
    if len(gold_flat) >= 2 and np.ptp(gold_flat) > 0 and np.ptp(model_flat) > 0:
        out["spearman"] = float(spearmanr(gold_flat, model_flat).statistic)
        out["kendall_tau_b"] = float(kendalltau(gold_flat, model_flat).statistic)
    return out
