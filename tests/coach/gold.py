"""Hand-built gold frames for the coach tests: a steady person, then one change per rule.

Built on the contract's own schemas (``tunewell.lake.frames.empty``), so a renamed column breaks
these tests instead of silently testing nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from tunewell.coach.week import IsoWeek, PersonData
from tunewell.lake.frames import empty

WEEK = IsoWeek(2026, 15)  # Mon 2026-04-06 .. Sun 2026-04-12
WEEKS = 10


def _frame(table: str, rows: dict[str, list]) -> pl.DataFrame:
    base = empty(table)
    n = len(next(iter(rows.values())))
    cols = []
    for name, dtype in base.schema.items():
        if name in rows:
            cols.append(pl.Series(name, rows[name]).cast(dtype))
        else:
            cols.append(pl.Series(name, [None] * n, dtype=dtype))
    return pl.DataFrame(cols)


def days(end: date = WEEK.sunday, n: int = 7 * WEEKS) -> list[date]:
    return [end - timedelta(days=n - 1 - i) for i in range(n)]


def steady_nights(user: str = "u1", end: date = WEEK.sunday, n: int = 7 * WEEKS) -> pl.DataFrame:
    ds = days(end, n)
    k = len(ds)
    wiggle = [((i * 7) % 5 - 2) for i in range(k)]  # deterministic small variation
    return _frame(
        "nightly_features",
        {
            "user_id": [user] * k,
            "record_id": [f"{user}-{d}" for d in ds],
            "sleep_date": ds,
            "sleep_ok": [True] * k,
            "sleep_source": ["garmin_fit"] * k,
            "tst_min": [465.0 + 5 * w for w in wiggle],
            "tib_min": [500.0 + 5 * w for w in wiggle],
            "efficiency_pct": [93.0 + 0.5 * w for w in wiggle],
            "sol_min": [12.0] * k,
            "waso_min": [10.0] * k,
            "awakenings": [1] * k,
            "onset_h": [23.25 + 0.1 * w for w in wiggle],
            "offset_h": [31.0 + 0.1 * w for w in wiggle],
            "midpoint_h": [27.1 + 0.1 * w for w in wiggle],
            "rmssd_ms": [55.0 + w for w in wiggle],
            "ln_rmssd": [4.0 + 0.02 * w for w in wiggle],
            "hrv_ok": [True] * k,
            "hrv_source": ["rr"] * k,
            "resting_hr": [52.0 + 0.5 * w for w in wiggle],
            "sri": [88.0] * k,
            "sri_ok": [True] * k,
            "bedtime_sd_min": [22.0] * k,
            "waketime_sd_min": [20.0] * k,
            "social_jetlag_h": [0.5] * k,
            "tst_min_b7": [465.0] * k,
            "tst_min_mu60": [466.0] * k,
            "tst_min_swc": [8.0] * k,
            "tst_min_calibrating": [False] * k,
            "midpoint_h_b7": [27.1] * k,
            "midpoint_h_mu60": [27.1] * k,
            "midpoint_h_swc": [0.12] * k,
            "midpoint_h_calibrating": [False] * k,
            "ln_rmssd_b7": [4.0] * k,
            "ln_rmssd_mu60": [4.0] * k,
            "ln_rmssd_sd60": [0.08] * k,
            "ln_rmssd_swc": [0.04] * k,
            "ln_rmssd_cv7": [1.5] * k,
            "ln_rmssd_calibrating": [False] * k,
            "resting_hr_b7": [52.0] * k,
            "resting_hr_mu60": [52.0] * k,
            "resting_hr_sd60": [1.2] * k,
            "resting_hr_swc": [0.6] * k,
            "resting_hr_calibrating": [False] * k,
        },
    )


def steady_load(user: str = "u1", end: date = WEEK.sunday, n: int = 7 * WEEKS) -> pl.DataFrame:
    ds = [d - timedelta(days=1) for d in days(end, n)] + [end]
    k = len(ds)
    trimp = [120.0 if d.weekday() in (1, 3, 5) else (40.0 if d.weekday() == 6 else 0.0) for d in ds]
    return _frame(
        "daily_load",
        {
            "user_id": [user] * k,
            "record_id": [f"{user}-{d}" for d in ds],
            "date": ds,
            "trimp": trimp,
            "n_workouts": [int(t > 0) for t in trimp],
            "acwr": [1.0] * k,
            "monotony": [1.1] * k,
            "atl": [57.0] * k,
            "ctl": [57.0] * k,
        },
    )


def steady_scores(user: str = "u1", end: date = WEEK.sunday, n: int = 7 * WEEKS) -> pl.DataFrame:
    ds = days(end, n)
    k = len(ds)
    return _frame(
        "scores",
        {
            "user_id": [user] * k,
            "record_id": [f"{user}-{d}" for d in ds],
            "sleep_date": ds,
            "balance_index": [float((i * 5) % 11 - 5) for i in range(k)],
            "balance_state": ["balanced"] * k,
            "balance_confidence": [0.9] * k,
            "balance_markers": ["ln_rmssd,resting_hr"] * k,
            "contributors": ["[]"] * k,
            "sleep_quality": [74.0] * k,
            "sleep_quality_basis": ["staged"] * k,
            "flag_short_sleep": [False] * k,
            "flag_low_efficiency": [False] * k,
            "flag_long_latency": [False] * k,
            "flag_fragmented": [False] * k,
            "flag_irregular": [False] * k,
            "balance_version": ["test"] * k,
            "model_version": ["test"] * k,
        },
    )


def empty_reports() -> pl.DataFrame:
    return empty("self_report")


def steady_person(user: str = "u1", *, scores: bool = True) -> PersonData:
    return PersonData(
        user,
        WEEK,
        steady_nights(user),
        steady_load(user),
        steady_scores(user) if scores else empty("scores"),
        empty_reports(),
    )


def change(
    df: pl.DataFrame, col: str, values: dict[date, object] | object, on: str
) -> pl.DataFrame:
    """Set ``col`` on some dates (dict) or on every date of WEEK (a scalar)."""
    if not isinstance(values, dict):
        values = {WEEK.monday + timedelta(days=i): values for i in range(7)}
    dtype = df.schema[col]
    expr = pl.col(col)
    for d, v in values.items():
        expr = pl.when(pl.col(on) == d).then(pl.lit(v, dtype=dtype)).otherwise(expr)
    return df.with_columns(expr.alias(col))


def in_week(i: int, wk: IsoWeek = WEEK) -> date:
    return wk.monday + timedelta(days=i)
