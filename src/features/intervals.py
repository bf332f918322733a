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
    return (
        samples.sort(at)
        .join_asof(
            intervals.sort(start),
            left_on=at,
            right_on=start,
            by=by,
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col(at) < pl.col(end))
    )
