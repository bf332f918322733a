"""Balance index: scikit-learn contract, METRICS.md scale and states, robustness to markers."""

from __future__ import annotations

import json
import warnings
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.utils.estimator_checks import check_estimator

from tunewell.models import balance
from tunewell.models.balance import BalanceIndex, BalanceState, balance_frame


@pytest.mark.parametrize("est", [BalanceIndex(), BalanceIndex(weights="fit")], ids=repr)
def test_scikit_learn_estimator_checks(est):
    """Every generic check passes. Not applicable: check_array_api_input (needs SCIPY_ARRAY_API;
    the index is numpy-only), and for a ``weights`` mapping the checks with arbitrary widths (the
    mapping names the columns, so a 1-column X cannot carry the named markers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    bad = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert not bad
    assert skipped <= {"check_array_api_input"}
    assert len(results) > 40


def _nights(n: int = 5, **cols) -> pl.DataFrame:
    base = {
        "user_id": ["u"] * n,
        "sleep_date": [date(2026, 1, 1) + timedelta(days=i) for i in range(n)],
        "ln_rmssd": [4.0] * n,
        "resting_hr": [50.0] * n,
        "hr_sleep_mean": [54.0] * n,
        "ln_rmssd_z": [0.0] * n,
        "resting_hr_z": [0.0] * n,
        "hr_sleep_mean_z": [0.0] * n,
        "ln_rmssd_n60": [40] * n,
        "resting_hr_n60": [40] * n,
        "hr_sleep_mean_n60": [40] * n,
    }
    base.update(cols)
    return pl.DataFrame(base)


def test_scale_signs_clip_and_bands():
    f = _nights(
        5,
        ln_rmssd_z=[0.0, -1.0, 1.0, -9.0, 0.3],
        resting_hr_z=[0.0, 1.0, -1.0, 9.0, 0.0],
        hr_sleep_mean_z=[0.0, 1.0, -1.0, 9.0, 0.0],
    )
    b = balance_frame(f)
    idx = b["balance_index"].to_list()
    assert idx[0] == 0
    assert idx[1] == pytest.approx(-100 / 3)  # lower HRV, higher HR: arousal-leaning
    assert idx[2] == pytest.approx(100 / 3)
    assert idx[3] == pytest.approx(-100)  # clipped at ±3 SD
    assert idx[4] == pytest.approx(0.3 / 3 * 100 / 3)
    assert b["balance_state"].to_list() == [
        "balanced",
        "arousal-leaning",
        "inhibition-leaning",
        "arousal-leaning",
        "balanced",
    ]
    assert pytest.approx(16.667, abs=1e-3) == balance.BALANCED_BAND
    assert b["balance_confidence"].to_list() == [1.0] * 5
    c = json.loads(b["contributors"][1])
    assert [x["marker"] for x in c] == ["ln_rmssd", "resting_hr", "hr_sleep_mean"]
    assert set(c[0]) == {"marker", "value", "z", "weight", "share"}
    assert sum(x["weight"] for x in c) == pytest.approx(1, abs=1e-3)
    assert sum(abs(x["share"]) for x in c) == pytest.approx(1, abs=1e-3)
    assert c[0]["value"] == 4.0 and c[0]["z"] == -1.0


@pytest.mark.parametrize("missing", ["ln_rmssd", "resting_hr", "hr_sleep_mean"])
def test_each_marker_missing_in_turn(missing):
    full = _nights(3, ln_rmssd_z=[-1.5] * 3, resting_hr_z=[1.5] * 3, hr_sleep_mean_z=[1.5] * 3)
    part = full.with_columns(pl.lit(None, pl.Float64).alias(f"{missing}_z"))
    b_full, b_part = balance_frame(full), balance_frame(part)
    # every marker says the same, so renormalised weights give the same index from the rest
    assert b_part["balance_index"].to_list() == pytest.approx(b_full["balance_index"].to_list())
    assert missing not in b_part["balance_markers"][0].split(",")
    assert len(b_part["balance_markers"][0].split(",")) == 2
    assert b_part["balance_confidence"][0] == pytest.approx(2 / 3)
    used = json.loads(b_part["contributors"][0])
    assert sum(x["weight"] for x in used) == pytest.approx(1, abs=1e-3)


def test_optional_markers_are_used_when_their_columns_exist():
    f = _nights(2, resp_rate=[15.0, 18.0], resp_rate_z=[0.0, 3.0], resp_rate_n60=[30, 30])
    b = balance_frame(f)
    assert b["balance_markers"][1] == "ln_rmssd,resting_hr,hr_sleep_mean,resp_rate"
    assert b["balance_index"][1] == pytest.approx(-100 / 4)  # raised breathing = arousal
    skin = _nights(1, skin_temp_dev_z=[None])
    assert balance_frame(skin)["balance_confidence"][0] == pytest.approx(3 / 4)


def test_no_marker_gives_nulls_and_short_history_is_calibrating():
    f = _nights(
        3,
        ln_rmssd_z=[None, 1.0, 1.0],
        resting_hr_z=[None, -1.0, -1.0],
        hr_sleep_mean_z=[None, None, None],
        ln_rmssd_n60=[0, 13, 20],
        resting_hr_n60=[0, 30, 20],
    )
    b = balance_frame(f)
    assert b["balance_index"][0] is None and b["balance_state"][0] is None
    assert b["balance_confidence"][0] is None and b["contributors"][0] is None
    assert b["balance_state"][1] == BalanceState.CALIBRATING  # lnRMSSD has 13 < 14 days
    assert b["balance_state"][2] == BalanceState.INHIBITION
    assert b["balance_confidence"][2] == pytest.approx((2 / 3) * (20 / 30))


def test_fitted_weights_follow_the_target_and_stay_non_negative():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3))
    y = -z[:, 1] + rng.normal(0, 0.1, 400)  # only resting HR (sign −) matters
    X = pl.DataFrame(z, schema=["ln_rmssd_z", "resting_hr_z", "hr_sleep_mean_z"]).to_pandas()
    m = BalanceIndex(weights="fit").fit(X, y)
    assert m.markers_ == ("ln_rmssd", "resting_hr", "hr_sleep_mean")
    assert m.weights_.argmax() == 1 and (m.weights_ >= 0).all()
    assert m.weights_.sum() == pytest.approx(1, abs=1e-3)
    with pytest.raises(ValueError, match="requires y"):
        BalanceIndex(weights="fit").fit(X)
    with pytest.raises(ValueError, match="not in X"):
        BalanceIndex(weights={"resp_rate": 1.0}).fit(X)


def test_ordinary_nights_of_a_steady_person_sit_near_zero():
    """A person with only day-to-day noise: the index through the pipeline's own baselines
    averages ≈ 0 and is `balanced` about as often as chance allows."""
    from tunewell.features.baselines import baselines

    rng = np.random.default_rng(4)
    n = 120
    f = pl.DataFrame(
        {
            "user_id": ["u"] * n,
            "sleep_date": [date(2026, 1, 1) + timedelta(days=i) for i in range(n)],
            "ln_rmssd": 4.0 + rng.normal(0, 0.08, n),
            "resting_hr": 52 + rng.normal(0, 1.5, n),
            "hr_sleep_mean": 56 + rng.normal(0, 1.5, n),
        }
    )
    series = ("ln_rmssd", "resting_hr", "hr_sleep_mean")
    z = f.join(baselines(f.lazy(), series).collect(), on=["user_id", "sleep_date"])
    b = balance_frame(z).filter(pl.col("balance_state") != "calibrating")
    assert b.height > 80
    assert abs(b["balance_index"].mean()) < 5
    # three independent N(0, 1) markers: mean z has SD 0.58, so P(|mean z| ≤ 0.5) ≈ 0.61
    assert (b["balance_state"] == "balanced").mean() > 0.45
