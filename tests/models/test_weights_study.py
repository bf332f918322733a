"""The weight choice of the balance index on real labelled data (LifeSnaps, PMData)."""

from __future__ import annotations

import pytest

from tests.conftest import shared
from tunewell.models import weights_study as ws


def test_fitted_weights_must_clearly_beat_equal_ones():
    eq = {"a": 0.0, "b": 0.1, "c": -0.1, "d": 0.05}
    assert not ws.fitted_beats_equal(eq, {k: v + 0.01 for k, v in eq.items()})  # below 0.1
    assert ws.fitted_beats_equal(eq, {k: v + 0.3 for k, v in eq.items()})
    noisy = {"a": 0.5, "b": -0.2, "c": 0.4, "d": -0.1}
    assert not ws.fitted_beats_equal(eq, noisy)  # mean gain inside 2 SE
    assert not ws.fitted_beats_equal({"a": 0.0}, {"a": 0.9})  # too few people


@pytest.mark.realdata
def test_lifesnaps_and_pmdata_do_not_justify_fitted_weights():
    root = shared()
    shared("lifesnaps", ws.LIFESNAPS_FILE)
    res = {(r.dataset, r.target): r for r in ws.run(root)}
    ls = res[("LifeSnaps", "RESTED/RELAXED − TIRED − TENSE/ANXIOUS")]
    # measured: 27 people, 723 nights; within-person ρ equal −0.051, fitted 0.015
    assert ls.n_people >= 20 and ls.n_nights > 500
    assert abs(ls.within_rho_equal) < 0.1 and abs(ls.within_rho_fitted) < 0.1
    assert not ls.fitted_wins
    for target in ("readiness", "fatigue"):
        pm = res[("PMData", target)]
        assert pm.markers == ["resting_hr"] and not pm.fitted_wins


@pytest.mark.realdata
def test_lifesnaps_vendor_yardsticks():
    shared("lifesnaps", ws.LIFESNAPS_FILE)
    ys = {y.vendor_score: y for y in ws.run_yardsticks(shared())}
    # measured: Fitbit responsiveness ρ 0.20 (index) vs 0.26 (plain); stress, sleep |ρ| < 0.1
    r = ys["responsiveness_points_percentage"]
    assert 0.1 < r.within_rho_index < 0.3 and r.within_rho_plain > r.within_rho_index
    assert abs(ys["stress_score"].within_rho_index) < 0.1
    assert abs(ys["sleep_points_percentage"].within_rho_index) < 0.1
