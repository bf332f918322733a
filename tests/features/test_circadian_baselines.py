"""Regularity (SRI, timing SD, social jet lag), rest-activity (IS/IV/L5/M10) and baselines."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tunewell.features.baselines import baselines
from tunewell.features.circadian import (
    hourly_hr,
    rest_activity,
    rest_activity_any,
    sri,
    sri_pairs,
    timing,
    wear_intervals,
)

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
            "user_id": pl.String,
            "start_utc": pl.Datetime("us", "UTC"),
            "end_utc": pl.Datetime("us", "UTC"),
            "utc_offset_min": pl.Int32,
        },
    )


def _days(n: int) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"user_id": ["u1"] * n, "sleep_date": [D0 + timedelta(days=i) for i in range(n)]}
    )


def _frame(day: date) -> tuple[datetime, datetime]:
    """The noon-to-noon frame of sleep date ``day``."""
    noon = datetime(day.year, day.month, day.day, 12)
    return noon - timedelta(days=1), noon


def _wear(n: int, skip: tuple[int, ...] = ()) -> pl.LazyFrame:
    """Full wear over the frames of D0 .. D0 + n − 1, except the days in ``skip``."""
    return _intervals([_frame(D0 + timedelta(days=i)) for i in range(n) if i not in skip])


def _regular(n: int) -> list[tuple[datetime, datetime]]:
    return [
        (datetime(2026, 1, 4, 23) + timedelta(days=i), datetime(2026, 1, 5, 7) + timedelta(days=i))
        for i in range(n)
    ]


def test_sri_regular_schedule_with_full_wear_is_100() -> None:
    out = sri(_intervals(_regular(10)), _wear(10), _days(10)).collect().sort("sleep_date")
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
    out = sri(_intervals(spans), _wear(10), _days(10)).collect().sort("sleep_date")
    assert out["sri"][-1] == pytest.approx(-100.0)


def test_sri_day_with_8h_of_data_is_excluded() -> None:
    # Jan 10 (index 5) has only its 8 h sleep recorded: 480/1440 = 33 % < 66 % valid, so the
    # pairs (9, 10) and (10, 11) drop out; Jan 14 keeps pairs ending 8, 9, 12, 13, 14.
    out = sri(_intervals(_regular(10)), _wear(10, skip=(5,)), _days(10)).collect()
    last = out.sort("sleep_date").row(-1, named=True)
    assert last["sri_n_pairs"] == 5 and last["sri"] == pytest.approx(100.0)
    # Without any wear, a recorded sleep alone never makes a valid day.
    none = sri(_intervals(_regular(10)), _wear(0), _days(10)).collect()
    assert none.height == 0
    # Jan 9, 10, 11 with sleep only: pairs ending 9..12 excluded, 3 valid pairs < 4 -> null.
    out = sri(_intervals(_regular(10)), _wear(10, skip=(4, 5, 6)), _days(10)).collect()
    last = out.sort("sleep_date").row(-1, named=True)
    assert last["sri_n_pairs"] == 3 and last["sri"] is None


def test_sri_counts_only_epochs_valid_on_both_days() -> None:
    # Jan 12 (index 7): worn 16:00 Jan 11 -> 12:00 Jan 12 only (1200 of 1440 epochs, 83 %), and
    # that night is slept 00:00 -> 08:00 instead of 23:00 -> 07:00. Pairs (11, 12) and (12, 13)
    # compare 1200 epochs each, 120 of them in a different state. Over the 7 pairs ending Jan 14:
    # agree = 5·1440 + 2·1080 = 9360 of 5·1440 + 2·1200 = 9600 -> SRI = 200·0.975 − 100 = 95.
    spans = _regular(10)
    spans[7] = (datetime(2026, 1, 12, 0), datetime(2026, 1, 12, 8))
    part = (datetime(2026, 1, 11, 16), datetime(2026, 1, 12, 12))
    wear = pl.concat([_wear(10, skip=(7,)), _intervals([part])])
    out = sri(_intervals(spans), wear, _days(10)).collect().sort("sleep_date")
    last = out.row(-1, named=True)
    assert last["sri_n_pairs"] == 7
    assert last["sri"] == pytest.approx(95.0)


def _conformed(rows: dict, with_end: bool = True) -> pl.LazyFrame:
    n = len(rows["start_utc"])
    base = {"user_id": ["u1"] * n, "utc_offset_min": [0] * n, **rows}
    if not with_end:
        base["end_utc"] = [None] * n
    return pl.LazyFrame(
        base,
        schema_overrides={
            "user_id": pl.String,
            "start_utc": pl.Datetime("us", "UTC"),
            "end_utc": pl.Datetime("us", "UTC"),
            "utc_offset_min": pl.Int32,
        },
    )


def test_wear_comes_from_minute_steps_and_hr_samples_not_day_totals() -> None:
    eps = _intervals(_regular(3))
    day_steps = _conformed(  # one row per whole day: no evidence for any minute
        {
            "start_utc": [datetime(2026, 1, 4 + i) for i in range(4)],
            "end_utc": [datetime(2026, 1, 5 + i) for i in range(4)],
            "steps": [8000.0] * 4,
        }
    )
    summaries = _conformed(
        {
            "start_utc": [datetime(2026, 1, 4, 12) + timedelta(minutes=m) for m in range(4320)],
            "bpm": [60.0] * 4320,
            "context": ["daily_avg"] * 4320,
        },
        with_end=False,
    )
    wear = wear_intervals(eps, day_steps, summaries)
    assert sri_pairs(_intervals(_regular(3)), wear).collect().height == 0
    samples = summaries.with_columns(pl.lit("sample").alias("context"))
    pairs = sri_pairs(_intervals(_regular(3)), wear_intervals(eps, day_steps, samples)).collect()
    assert pairs["sleep_date"].to_list() == [D0 + timedelta(days=1), D0 + timedelta(days=2)]
    assert pairs["n_both"].to_list() == [1440, 1440]
    minute_steps = _conformed(
        {
            "start_utc": [datetime(2026, 1, 4, 12) + timedelta(minutes=m) for m in range(4320)],
            "end_utc": [datetime(2026, 1, 4, 12, 1) + timedelta(minutes=m) for m in range(4320)],
            "steps": [0.0] * 4320,
        }
    )
    none_hr = summaries.filter(pl.lit(False))
    pairs = sri_pairs(_intervals(_regular(3)), wear_intervals(eps, minute_steps, none_hr))
    assert pairs.collect()["agree"].to_list() == [1440, 1440]


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


def _minute_hr(days: int, drop_hour: tuple[int, int] | None = None) -> pl.LazyFrame:
    """HR every minute, constant within a local hour at 60 + hour bpm."""
    t = [datetime(2026, 1, 5) + timedelta(minutes=m) for m in range(days * 1440)]
    df = pl.DataFrame({"start_utc": t}).with_columns(
        (60.0 + pl.col("start_utc").dt.hour()).alias("bpm")
    )
    if drop_hour is not None:
        d, h = drop_hour
        day = (D0 + timedelta(days=d)).isoformat()
        df = df.filter(
            ~(
                (pl.col("start_utc").dt.date().cast(pl.String) == day)
                & (pl.col("start_utc").dt.hour() == h)
            )
        )
    return _conformed(
        {
            "start_utc": df["start_utc"].to_list(),
            "bpm": df["bpm"].to_list(),
            "context": ["sample"] * df.height,
        },
        with_end=False,
    )


def _no_steps() -> pl.LazyFrame:
    return _conformed({"start_utc": [], "end_utc": [], "steps": []}).with_columns(
        pl.col("steps").cast(pl.Float64)
    )


def test_rest_activity_falls_back_to_hourly_hr_without_steps() -> None:
    r = rest_activity_any(_no_steps(), _minute_hr(7), _target(7)).collect().row(0, named=True)
    assert r["rar_signal"] == "hr" and r["rar_n_days"] == 7
    # Identical days: IS = 1. Profile 60 + h: L5 = hours 0–4 (62), M10 = hours 14–23 (78.5).
    assert r["rar_is"] == pytest.approx(1.0)
    assert r["rar_l5"] == pytest.approx(62.0) and r["rar_m10"] == pytest.approx(78.5)
    assert r["rar_ra"] == pytest.approx(16.5 / 140.5)
    # N = 168; Σ(Δx)² = 7·23·1² + 6·23² = 3335; Σ(x − x̄)² = 7·Σ(h − 11.5)² = 8050.
    assert r["rar_iv"] == pytest.approx(168 * 3335 / (167 * 8050))
    # One hour without HR: that day cannot be used, so 6 days and no values.
    gap = rest_activity_any(_no_steps(), _minute_hr(7, (3, 10)), _target(7)).collect()
    assert gap.height == 0 or gap["rar_is"].is_null().all()
    assert hourly_hr(_minute_hr(7, (3, 10))).collect()["date"].n_unique() == 6
    # With a week of minute steps, steps win even though HR is there too.
    t = [datetime(2026, 1, 5) + timedelta(minutes=m) for m in range(7 * 1440)]
    steps = _conformed(
        {
            "start_utc": t,
            "end_utc": [x + timedelta(minutes=1) for x in t],
            "steps": [float(x.hour >= 8) * 10 for x in t],
        }
    )
    s = rest_activity_any(steps, _minute_hr(7), _target(7)).collect().row(0, named=True)
    assert s["rar_signal"] == "steps" and s["rar_l5"] == pytest.approx(0.0)
    assert s["rar_m10"] == pytest.approx(600.0)


def test_robust_z_uses_median_and_scaled_mad() -> None:
    # Chronic window of 60 days: 50 days alternate 4.0 / 4.2, 10 sick days at 2.0. The mean and
    # SD are dragged by the sick days (3.75, 0.74); the median (4.0) and MAD (0.2) are not, so a
    # drop to 3.5 on day 66 stands out in the robust z only.
    n = 80
    x = np.r_[np.full(10, 2.0), np.tile([4.0, 4.2], 35)]
    x[66] = 3.5
    df = pl.LazyFrame(
        {
            "user_id": ["u1"] * n,
            "sleep_date": [D0 + timedelta(days=i) for i in range(n)],
            "resting_hr": x.tolist(),
        }
    )
    r = baselines(df, ("resting_hr",)).collect().sort("sleep_date").row(66, named=True)
    chronic = x[0:60]
    assert r["resting_hr_med60"] == pytest.approx(4.0)
    assert r["resting_hr_mad60"] == pytest.approx(1.4826 * 0.2)
    assert r["resting_hr_zr"] == pytest.approx(-0.5 / (1.4826 * 0.2))
    assert r["resting_hr_z"] == pytest.approx((x[66] - chronic.mean()) / chronic.std(ddof=1))
    assert abs(r["resting_hr_zr"]) > 2 * abs(r["resting_hr_z"])
    flat = df.with_columns(pl.lit(4.0).alias("resting_hr"))
    f = baselines(flat, ("resting_hr",)).collect().row(-1, named=True)
    assert f["resting_hr_mad60"] == 0.0 and f["resting_hr_zr"] is None
