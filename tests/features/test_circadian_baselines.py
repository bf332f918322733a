"""Regularity (SRI, timing SD, social jet lag), rest-activity (IS/IV/L5/M10) and baselines."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tunewell.features.baselines import baselines
from tunewell.features.circadian import rest_activity, sri, timing

D0 = date(2026, 1, 5)  # a Monday


def _intervals(spans: list[tuple[datetime, datetime]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "user_id": ["u1"] * len(spans),
            "start_utc": [s for s, _ in spans],
            "end_utc": [e for _, e in spans],
            "utc_offset_min": [0] * len(spans),
        },
        schema_overrides={
            "start_utc": pl.Datetime("us", "UTC"),
            "end_utc": pl.Datetime("us", "UTC"),
            "utc_offset_min": pl.Int32,
        },
    )


def _days(n: int) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"user_id": ["u1"] * n, "sleep_date": [D0 + timedelta(days=i) for i in range(n)]}
    )


def test_sri_regular_schedule_is_100() -> None:
    spans = [
        (datetime(2026, 1, 4, 23) + timedelta(days=i), datetime(2026, 1, 5, 7) + timedelta(days=i))
        for i in range(10)
    ]
    out = sri(_intervals(spans), _days(10)).collect().sort("sleep_date")
    last = out.row(-1, named=True)
    assert last["sri"] == pytest.approx(100.0)
    assert last["sri_n_pairs"] == 7
    assert D0 not in out["sleep_date"].to_list()  # no previous day, no pair


def test_sri_12h_alternating_schedule_is_minus_100() -> None:
    # Even days: asleep 20:00 -> 08:00; odd days: 08:00 -> 20:00. In noon-to-noon frames the
    # two patterns never share a sleeping minute and together cover every minute: agreement 0.
    spans = []
    for i in range(10):
        d = datetime(2026, 1, 5) + timedelta(days=i)
        if i % 2 == 0:
            spans.append((d - timedelta(hours=4), d + timedelta(hours=8)))
        else:
            spans.append((d + timedelta(hours=8), d + timedelta(hours=20)))
    out = sri(_intervals(spans), _days(10)).collect().sort("sleep_date")
    assert out["sri"][-1] == pytest.approx(-100.0)


def test_sri_excludes_pairs_with_missing_days() -> None:
    spans = [
        (datetime(2026, 1, 4, 23) + timedelta(days=i), datetime(2026, 1, 5, 7) + timedelta(days=i))
        for i in range(10)
    ]
    days = _days(10).filter(pl.col("sleep_date").dt.day().is_in([10, 11]).not_())
    out = sri(_intervals(spans), days).collect().sort("sleep_date")
    last = out.row(-1, named=True)  # Jan 14: pairs ending 8, 9, 13, 14 valid -> 4 pairs
    assert last["sri_n_pairs"] == 4 and last["sri"] == pytest.approx(100.0)
    days = _days(10).filter(pl.col("sleep_date").dt.day().is_in([9, 10, 11]).not_())
    out = sri(_intervals(spans), days).collect().sort("sleep_date")
    assert out.row(-1, named=True)["sri"] is None  # 3 valid pairs < 4


def test_timing_sd_and_social_jetlag() -> None:
    n = 28
    dates = [D0 + timedelta(days=i) for i in range(n)]
    free = [d.isoweekday() >= 6 for d in dates]
    mid = [27.0 + (1.5 if f else 0.0) for f in free]
    onset = [23.0 + (1.0 if i % 2 else -1.0) for i in range(n)]  # ±1 h around 23:00
    nightly = pl.LazyFrame(
        {
            "user_id": ["u1"] * n,
            "sleep_date": dates,
            "onset_h": onset,
            "offset_h": [31.0] * n,
            "midpoint_h": mid,
        }
    )
    r = timing(nightly).collect().sort("sleep_date").row(-1, named=True)
    assert r["social_jetlag_h"] == pytest.approx(1.5)
    assert r["waketime_sd_min"] == pytest.approx(0.0, abs=1e-3)
    # two angles ±15°: R = cos 15°, circular SD = sqrt(-2 ln R) in minutes of the 24 h circle
    expected = math.sqrt(-2 * math.log(math.cos(math.radians(15)))) * 24 * 60 / (2 * math.pi)
    assert r["bedtime_sd_min"] == pytest.approx(expected, rel=1e-9)
    assert r["timing_n_nights"] == 14


def _hourly(x: np.ndarray) -> pl.LazyFrame:
    n_days = x.size // 24
    return pl.LazyFrame(
        {
            "user_id": ["u1"] * x.size,
            "date": np.repeat([D0 + timedelta(days=i) for i in range(n_days)], 24).tolist(),
            "hour": np.tile(np.arange(24, dtype=np.int32), n_days),
            "x": x.astype(float),
        }
    )


def _target(day: int) -> pl.LazyFrame:
    return pl.LazyFrame({"user_id": ["u1"], "sleep_date": [D0 + timedelta(days=day)]})


def test_is_iv_of_sine_and_white_noise() -> None:
    h = np.arange(24 * 7)
    sine = 100 + 50 * np.sin(2 * np.pi * h / 24)
    r = rest_activity(_hourly(sine), _target(7)).collect().row(0, named=True)
    assert r["rar_is"] == pytest.approx(1.0)
    # IV of a sampled sine: N Σ(Δx)² / ((N−1) Σ(x−x̄)²) = 2(1 − cos(2π/24)) · N/(N−1) (cyclic)
    assert r["rar_iv"] == pytest.approx(2 * (1 - math.cos(2 * math.pi / 24)), rel=0.02)
    # L5 of the sine profile: 5 lowest consecutive hours centred on hour 18
    prof = sine[:24]
    assert r["rar_l5"] == pytest.approx(np.mean(prof[16:21]))
    assert r["rar_m10"] == pytest.approx(max(np.mean(np.roll(prof, -s)[:10]) for s in range(24)))
    noise = np.random.default_rng(3).normal(100, 10, 24 * 7)
    rn = rest_activity(_hourly(noise), _target(7)).collect().row(0, named=True)
    assert rn["rar_iv"] == pytest.approx(2.0, abs=0.3)
    assert rn["rar_is"] < 0.3
    short = rest_activity(_hourly(sine[: 24 * 5]), _target(7)).collect().row(0, named=True)
    assert short["rar_is"] is None and short["rar_n_days"] == 5


def test_baselines_windows_and_calibrating() -> None:
    n = 90
    dates = [D0 + timedelta(days=i) for i in range(n)]
    x = np.r_[np.tile([4.0, 4.2], 40), np.full(10, 3.5)]
    x_obj: list[float | None] = x.tolist()
    for i in (85, 86, 87, 88):  # only 3 valid days in the last acute week -> no acute mean
        x_obj[i] = None
    df = pl.LazyFrame(
        {
            "user_id": ["u1"] * n,
            "sleep_date": dates,
            "ln_rmssd": x_obj,
            "rmssd_window": ["nightly"] * n,
        }
    )
    b = baselines(df, ("ln_rmssd",)).collect().sort("sleep_date")
    early = b.row(15, named=True)  # chronic window: days 0..8 -> 9 valid < 14
    assert early["ln_rmssd_calibrating"] is True and early["ln_rmssd_mu60"] is None
    assert early["ln_rmssd_b7"] == pytest.approx(np.mean(x[9:16]))
    r = b.row(80, named=True)
    chronic = x[14:74]  # days t−66 .. t−7
    assert r["ln_rmssd_n60"] == 60 and r["ln_rmssd_calibrating"] is False
    assert r["ln_rmssd_mu60"] == pytest.approx(chronic.mean())
    assert r["ln_rmssd_sd60"] == pytest.approx(chronic.std(ddof=1))
    assert r["ln_rmssd_swc"] == pytest.approx(0.5 * chronic.std(ddof=1))
    assert r["ln_rmssd_z"] == pytest.approx((3.5 - chronic.mean()) / chronic.std(ddof=1))
    acute = x[74:81]
    assert r["ln_rmssd_b7"] == pytest.approx(acute.mean())
    assert r["ln_rmssd_cv7"] == pytest.approx(acute.std(ddof=1) / acute.mean() * 100)
    last = b.row(88, named=True)
    assert last["ln_rmssd_n7"] == 3 and last["ln_rmssd_b7"] is None and last["ln_rmssd_z"] is None


def test_baseline_ignores_other_hrv_windows() -> None:
    n = 30
    df = pl.LazyFrame(
        {
            "user_id": ["u1"] * n,
            "sleep_date": [D0 + timedelta(days=i) for i in range(n)],
            "ln_rmssd": [4.0 if i % 2 else 3.0 for i in range(n)],
            "rmssd_window": ["nightly" if i % 2 else "last_sws" for i in range(n)],
        }
    )
    b = baselines(df, ("ln_rmssd",)).collect().sort("sleep_date").row(-1, named=True)
    assert b["ln_rmssd_b7"] == pytest.approx(4.0)  # last_sws nights never enter it
    assert b["ln_rmssd_n7"] == 4  # days 23, 25, 27, 29
