"""Attach time-stamped samples to the interval that contains them (a main sleep, a workout).

One as-of join, shared by every feature that asks "which episode was this beat or heart-rate
sample in?", so the containment rule (start inclusive, end exclusive) is the same everywhere.
"""

from __future__ import annotations

import polars as pl


def within(
    samples: pl.LazyFrame,
    intervals: pl.LazyFrame,
    *,
    at: str,
    start: str,
    end: str,
    by: str = "user_id",
) -> pl.LazyFrame:
    """Samples joined to the latest interval starting at or before them, kept only if they fall
    before its end. Intervals of one user must not overlap (the multi-device merge ensures it
    for main sleeps and workouts)."""
    return _latest_started(samples, intervals, at, start, by).filter(pl.col(at) < pl.col(end))


def outside(
    samples: pl.LazyFrame,
    intervals: pl.LazyFrame,
    *,
    at: str,
    start: str,
    end: str,
    by: str = "user_id",
) -> pl.LazyFrame:
    """The samples ``within`` would drop: the same as-of join, the complementary filter, so
    "not in a workout" never needs a row index and an anti-join over every sample."""
    cols = samples.collect_schema().names()
    return (
        _latest_started(samples, intervals, at, start, by)
        .filter(~(pl.col(at) < pl.col(end)).fill_null(False))
        .select(cols)
    )


def _latest_started(
    samples: pl.LazyFrame, intervals: pl.LazyFrame, at: str, start: str, by: str
) -> pl.LazyFrame:
    """Each sample beside the latest interval (of its user) that started at or before it: the
    one join ``within`` and ``outside`` filter in opposite ways, so they can never disagree."""
    return samples.sort(at).join_asof(
        intervals.sort(start),
        left_on=at,
        right_on=start,
        by=by,
        strategy="backward",
        check_sortedness=False,
    )


def in_order(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``df`` in ``keys`` order, sorting only when it is not already in it.

    Samples arrive in recording order almost always, and a multi-key sort of a year of beats
    or heart-rate samples costs more memory than the samples themselves. A single user's
    ordered time column is also flagged sorted, so the as-of joins downstream skip their sort.
    """
    ok = df.height == 0 or all(df[k].null_count() == 0 for k in keys)
    if ok and df.height:
        # A leading key with one value (the user, in a per-user build) orders nothing; comparing
        # its strings row against row was the costliest part of the check.
        lead = 0
        while lead < len(keys) - 1 and df[keys[lead]].min() == df[keys[lead]].max():
            lead += 1
        rest = keys[lead:]
        ordered = pl.col(rest[-1]) >= pl.col(rest[-1]).shift(1)
        for k in reversed(rest[:-1]):
            c, p = pl.col(k), pl.col(k).shift(1)
            ordered = (c > p) | ((c == p) & ordered)
        ok = bool(df.select(ordered.fill_null(True).all()).item())
    if not ok:
        df = df.sort(keys)
    if df["start_utc"].is_sorted():
        df = df.with_columns(pl.col("start_utc").set_sorted())
    return df
