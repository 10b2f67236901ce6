"""Routing by uncertainty: the calibrated trust threshold, the coverage/error curve and the routes,
on hand-made uncertainty values."""

from __future__ import annotations

import pytest

from autoalign.judges.routing import (
    Calibration,
    CurvePoint,
    calibrate,
    clopper_pearson,
    combined_uncertainty,
    coverage_error_curve,
    make_router,
    route_shares,
)

UNCERTAIN = [0.9, 0.2, 0.1, 0.5, 0.2]
CORRECT = [False, False, True, True, True]  # by uncertainty: 0.1 ok, 0.2 ok + wrong, 0.5 ok, 0.9 wrong


def test_combined_uncertainty_averages_the_measured_signals():
    assert combined_uncertainty({"sample_spread": 0.2, "order_flip": None, "entropy": 0.6}) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no uncertainty signal"):
        combined_uncertainty({"order_flip": None})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        combined_uncertainty({"entropy": 1.5})


def test_the_curve_adds_tied_items_together():
    assert coverage_error_curve(UNCERTAIN, CORRECT) == [
        CurvePoint(0.1, 0.2, 0.0),
        CurvePoint(0.2, 0.6, pytest.approx(1 / 3)),
        CurvePoint(0.5, 0.8, 0.25),
        CurvePoint(0.9, 1.0, 0.4),
    ]


def test_calibration_trusts_the_largest_prefix_within_the_target():
    found = calibrate(UNCERTAIN, CORRECT, target_error=0.3)
    assert (found.trust_threshold, found.coverage, found.error, found.slice_size) == (0.5, 0.8, 0.25, 5)
    low, high = found.error_interval  # 1 error in 4 trusted: the exact interval, from tables
    assert low == pytest.approx(0.0063, abs=1e-4) and high == pytest.approx(0.8059, abs=1e-4)
    assert calibrate(UNCERTAIN, CORRECT, target_error=0.0).trust_threshold == 0.1
    nothing = calibrate([0.1, 0.2], [False, False], target_error=0.1)
    assert nothing == Calibration(None, 0.0, 0.0, (0.0, 1.0), 2)


def test_the_upper_bound_trusts_only_where_the_interval_meets_the_target():
    uncertain = [i / 100 for i in range(1, 31)]
    correct = [True] * 24 + [False] + [True] * 5
    # The point error of all 30 is 1/30: within 15%, so everything is trusted...
    assert calibrate(uncertain, correct, 0.15).coverage == 1.0
    # ...but 1 error in 30 has an exact 95% upper bound of 17.2%; 0 in 24 has 1 - 0.025^(1/24) = 14.2%.
    upper = calibrate(uncertain, correct, 0.15, bound="upper")
    assert (upper.trust_threshold, upper.coverage, upper.error) == (0.24, 0.8, 0.0)
    assert upper.error_interval[1] == pytest.approx(1 - 0.025 ** (1 / 24)) and upper.error_interval[1] < 0.15


def test_clopper_pearson_edges():
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    low, high = clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))  # (alpha/2)^(1/n) rule for 0 errors


def test_routes_split_between_critic_and_person_by_the_human_share():
    calibration = calibrate(UNCERTAIN, CORRECT, target_error=0.3)  # trust <= 0.5
    to_route = [0.1, 0.3, 0.6, 0.7, 0.8, 0.95]
    router = make_router(calibration, to_route, human_share=0.34, has_stronger_critic=True)
    assert [router.route(u) for u in to_route] == ["trust", "trust", "escalate", "escalate", "human", "human"]
    assert route_shares(router, to_route) == pytest.approx({"trust": 1 / 3, "escalate": 1 / 3, "human": 1 / 3})

    no_person = make_router(calibration, to_route, human_share=0.0, has_stronger_critic=True)
    assert {no_person.route(u) for u in to_route[2:]} == {"escalate"}
    no_critic = make_router(calibration, to_route, human_share=0.0, has_stronger_critic=False)
    assert {no_critic.route(u) for u in to_route[2:]} == {"human"}  # nobody else can judge them
    everyone = make_router(calibration, to_route, human_share=1.0, has_stronger_critic=True)
    assert {everyone.route(u) for u in to_route[2:]} == {"human"}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="target_error"):
        calibrate(UNCERTAIN, CORRECT, target_error=1.0)
    with pytest.raises(ValueError, match="one correctness label per uncertainty"):
        coverage_error_curve([0.1], [True, False])
    with pytest.raises(ValueError, match="human_share"):
        make_router(calibrate(UNCERTAIN, CORRECT, 0.3), [0.1], human_share=1.5, has_stronger_critic=True)
