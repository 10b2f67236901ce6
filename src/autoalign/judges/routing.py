"""Routing a critic's verdicts by how unsure it is: trust, escalate to a stronger critic, or ask a person.

The critic's uncertainty about an item is measured from signals in [0, 1] (disagreement across k
sampled critiques, a pairwise verdict that flips when the answers swap places, the entropy of
the verdict-token distribution); `combined_uncertainty` averages the ones present.

The trust threshold is set on a calibration slice whose truth is known (a verifier or gold
labels): sort its items by uncertainty and trust the largest prefix whose error rate stays
within the target. `coverage_error_curve` gives the whole trade-off for the report, and
`calibrate` reports the achieved error with its Clopper-Pearson interval, since a slice of a
few dozen items pins an error rate down only loosely (bound=upper holds that interval's upper
end to the target instead of the point value). Above the trust threshold, items go to a
stronger critic when there is one, and the most uncertain share (`human_share`) to a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scipy.stats import beta

Route = Literal["trust", "escalate", "human"]


def combined_uncertainty(signals: dict[str, float | None]) -> float:
    """Mean of the signals measured for an item (each in [0, 1]; None = not measured)."""
    values = [v for v in signals.values() if v is not None]
    if not values:
        raise ValueError("no uncertainty signal was measured for this item")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"uncertainty signals must lie in [0, 1], got {signals}")
    return sum(values) / len(values)


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    """Items with uncertainty <= threshold are trusted."""
    coverage: float
    """Share of the slice trusted."""
    error: float
    """Error rate among the trusted items."""


def coverage_error_curve(uncertainties: list[float], correct: list[bool]) -> list[CurvePoint]:
    """One point per distinct uncertainty value, from the most certain items up (ties enter
    together: a threshold cannot split items with the same uncertainty)."""
    if len(uncertainties) != len(correct) or not uncertainties:
        raise ValueError("need one correctness label per uncertainty, and at least one item")
    ordered = sorted(zip(uncertainties, correct), key=lambda pair: pair[0])
    points, wrong = [], 0
    for i, (value, ok) in enumerate(ordered):
        wrong += not ok
        if i + 1 == len(ordered) or ordered[i + 1][0] != value:
            points.append(CurvePoint(value, (i + 1) / len(ordered), wrong / (i + 1)))
    return points


def clopper_pearson(errors: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for an error rate of errors / n."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    low = 0.0 if errors == 0 else float(beta.ppf(alpha / 2, errors, n - errors + 1))
    high = 1.0 if errors == n else float(beta.ppf(1 - alpha / 2, errors + 1, n - errors))
    return low, high


@dataclass(frozen=True)
class Calibration:
    trust_threshold: float | None
    """Trust items at or below this uncertainty; None: no prefix met the target (trust none)."""
    coverage: float
    error: float
    error_interval: tuple[float, float]
    slice_size: int


def calibrate(
    uncertainties: list[float], correct: list[bool], target_error: float, bound: Literal["point", "upper"] = "point"
) -> Calibration:
    """The trust threshold covering the most calibration items at an error rate <= target_error.
    bound=upper asks the same of the error's exact 95% upper bound instead of its point value:
    the target then holds on new items with ~97.5% confidence, at the price of trusting fewer
    (the point value chooses, on the very items it is measured on, the threshold that looks best)."""
    if not 0.0 <= target_error < 1.0:
        raise ValueError(f"target_error must be in [0, 1), got {target_error}")
    n = len(uncertainties)
    best = None
    for point in coverage_error_curve(uncertainties, correct):
        trusted = round(point.coverage * n)
        error = point.error if bound == "point" else clopper_pearson(round(point.error * trusted), trusted)[1]
        if error <= target_error:
            best = point
    if best is None:
        return Calibration(None, 0.0, 0.0, (0.0, 1.0), n)
    trusted = round(best.coverage * n)
    errors = round(best.error * trusted)
    return Calibration(best.threshold, best.coverage, best.error, clopper_pearson(errors, trusted), n)


@dataclass(frozen=True)
class Router:
    """trust at or below trust_threshold; above it, a person for uncertainty above
    human_threshold and the stronger critic for the rest (everyone above the trust threshold
    goes to a person when there is no stronger critic)."""

    trust_threshold: float | None
    human_threshold: float | None = None
    has_stronger_critic: bool = False

    def route(self, uncertainty: float) -> Route:
        if self.trust_threshold is not None and uncertainty <= self.trust_threshold:
            return "trust"
        if not self.has_stronger_critic:
            return "human"
        if self.human_threshold is not None and uncertainty > self.human_threshold:
            return "human"
        return "escalate"


def make_router(
    calibration: Calibration, uncertainties: list[float], human_share: float, has_stronger_critic: bool
) -> Router:
    """A router whose person gets at most human_share of `uncertainties` (the items to route):
    the most uncertain ones above the trust threshold."""
    if not 0.0 <= human_share <= 1.0:
        raise ValueError(f"human_share must be in [0, 1], got {human_share}")
    ordered = sorted(uncertainties)
    human_count = int(human_share * len(ordered))
    if human_count == 0:
        human_threshold = float("inf")
    elif human_count == len(ordered):
        human_threshold = float("-inf")
    else:  # everything strictly above the last value kept from a person, so ties stay together
        human_threshold = ordered[len(ordered) - human_count - 1]
    return Router(calibration.trust_threshold, human_threshold, has_stronger_critic)


def route_shares(router: Router, uncertainties: list[float]) -> dict[str, float]:
    """Share of the items each route gets (for the summary and the report)."""
    counts = {"trust": 0, "escalate": 0, "human": 0}
    for value in uncertainties:
        counts[router.route(value)] += 1
    return {route: count / len(uncertainties) for route, count in counts.items()} if uncertainties else counts
