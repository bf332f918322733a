"""Night assignment (METRICS.md): the sleep date of an episode and which episode is the main sleep.

One implementation for every reader, so a DST night, a flight or a nap is dated the same whether
a ring, a watch or a phone recorded it:

- ``sleep_date`` is the local date of the wake-up, i.e. ``end_utc`` at the offset in force at the
  wake-up. After an eastward flight that is the destination's date, not the departure's.
- ``is_main_sleep``: the longest episode (real elapsed time, so a spring-forward night is an hour
  shorter than its clock times suggest) whose local start lies in [12:00 the day before,
  12:00 of ``sleep_date``). Ties go to the earlier start. An afternoon nap starts after 12:00 of
  its own wake date, so it is never the main sleep of that date.
- ``night_rule`` names and versions the rule, so a later rule change is visible in the lake.

Readers apply it within one file; the pipeline re-derives main sleep across files and sources.
"""

from __future__ import annotations

import polars as pl

NIGHT_RULE = "noon-split/v1"


def local_clock(utc: str, offset_min: str) -> pl.Expr:
    """Naive local wall-clock time of a UTC column (naive or aware) at an offset column."""
    return pl.col(utc).dt.replace_time_zone(None) + pl.duration(minutes=pl.col(offset_min))


def assign_nights(
    df: pl.DataFrame, *, start_offset: str = "utc_offset_min", end_offset: str | None = None
) -> pl.DataFrame:
    """Add ``sleep_date``, ``is_main_sleep`` and ``night_rule`` to episodes.

    Needs ``start_utc``/``end_utc`` (naive UTC or tz-aware) and integer-minute offset columns:
    ``start_offset`` at the start, ``end_offset`` at the wake-up (defaults to the start's when
    the record has only one). Row order is kept.
    """
    start_local = local_clock("start_utc", start_offset)
    sleep_date = local_clock("end_utc", end_offset or start_offset).dt.date()
    noon = pl.col("sleep_date").cast(pl.Datetime("us")) + pl.duration(hours=12)
    eligible = (start_local >= noon - pl.duration(days=1)) & (start_local < noon)
    first = (
        pl.col("__i")
        .sort_by(["__len", "start_utc"], descending=[True, False], nulls_last=True)
        .first()
    )
    return (
        df.with_row_index("__i")
        .with_columns(sleep_date.alias("sleep_date"))
        .with_columns(
            pl.when(eligible).then(pl.col("end_utc") - pl.col("start_utc")).alias("__len")
        )
        .with_columns(
            (pl.col("__len").is_not_null() & (pl.col("__i") == first.over("sleep_date"))).alias(
                "is_main_sleep"
            ),
            pl.lit(NIGHT_RULE).alias("night_rule"),
        )
        .drop("__i", "__len")
    )


__all__ = ["NIGHT_RULE", "assign_nights", "local_clock"]
