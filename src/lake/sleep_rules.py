"""The sleep rules of METRICS.md, once: night assignment and the summary of a night's stages.

Readers (one file at a time) and the features (all files, after the multi-device merge) both need
them. They live in the contract layer, below both, so that a DST night, a flight or a nap is
dated and measured the same whether a ring, a watch or a phone recorded it, and whether the
number is read from silver or from gold.

Night assignment (noon split, ``NIGHT_RULE``):

- ``sleep_date`` is the local date of the wake-up, i.e. ``end_utc`` at the offset in force at the
  wake-up. After an eastward flight that is the destination's date, not the departure's.
- ``is_main_sleep``: the longest episode (real elapsed time, so a spring-forward night is an hour
  shorter than its clock times suggest) whose local start lies in [12:00 the day before,
  12:00 of ``sleep_date``). Ties go to the earlier start. An afternoon nap starts after 12:00 of
  its own wake date, so it is never the main sleep of that date.

Stage summary: TST is the union of the asleep intervals (an episode can hold two devices' stages
of one night, and summing them would count the night twice); onset and final awakening are the
first asleep start and last asleep end; WASO is the non-asleep time between them; an awakening
is a wake gap between asleep intervals strictly longer than ``AWAKENING_MIN`` (Ohayon et al.
2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import polars as pl

from tunewell.lake.timezones import local_time

NIGHT_RULE = "noon-split/v1"
ASLEEP = ("light", "deep", "rem", "asleep")
STAGED = ("light", "deep", "rem")
AWAKENING_MIN = 5.0  # wake bouts strictly longer than this count (Ohayon et al. 2017)

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def minutes_between(a: str | pl.Expr, b: str | pl.Expr) -> pl.Expr:
    """``b − a`` in (fractional) minutes."""
    a = pl.col(a) if isinstance(a, str) else a
    b = pl.col(b) if isinstance(b, str) else b
    return (b - a).dt.total_microseconds() / 60e6


def flag_main_sleep(
    frame: Frame, *, by: Sequence[str] = ("sleep_date",), start_offset: str = "utc_offset_min"
) -> Frame:
    """Add ``is_main_sleep`` per ``by`` group (which must include ``sleep_date``).

    Needs ``start_utc``/``end_utc`` and the offset at the start in ``start_offset``. Row order
    is kept.
    """
    start_local = local_time("start_utc", start_offset)
    noon = pl.col("sleep_date").cast(pl.Datetime("us")) + pl.duration(hours=12)
    eligible = (start_local >= noon - pl.duration(days=1)) & (start_local < noon)
    first = (
        pl.col("__i")
        .sort_by(["__len", "start_utc"], descending=[True, False], nulls_last=True)
        .first()
    )
    return (
        frame.with_row_index("__i")
        .with_columns(
            pl.when(eligible).then(pl.col("end_utc") - pl.col("start_utc")).alias("__len")
        )
        .with_columns(
            (pl.col("__len").is_not_null() & (pl.col("__i") == first.over(list(by)))).alias(
                "is_main_sleep"
            )
        )
        .drop("__i", "__len")
    )


def assign_nights(
    df: pl.DataFrame, *, start_offset: str = "utc_offset_min", end_offset: str | None = None
) -> pl.DataFrame:
    """Add ``sleep_date``, ``is_main_sleep`` and ``night_rule`` to one file's episodes.

    Needs ``start_utc``/``end_utc`` (naive UTC or tz-aware) and integer-minute offset columns:
    ``start_offset`` at the start, ``end_offset`` at the wake-up (defaults to the start's when
    the record has only one). Row order is kept.
    """
    sleep_date = local_time("end_utc", end_offset or start_offset).dt.date()
    return flag_main_sleep(
        df.with_columns(sleep_date.alias("sleep_date")), start_offset=start_offset
    ).with_columns(pl.lit(NIGHT_RULE).alias("night_rule"))


def summarise_stages(
    stages: Frame, by: str = "episode_id", offset: str | None = "utc_offset_min"
) -> Frame:
    """Per ``by`` group of stage intervals: the night's sleep measures (module docstring).

    Columns: ``tst_min``, ``onset_utc``/``onset_off`` and ``final_utc``/``final_off`` (first
    asleep start, last asleep end, with their offsets), ``waso_min``, ``awakenings``,
    ``light_min``/``deep_min``/``rem_min`` and ``staged`` (any light/deep/REM, as opposed to a
    plain "asleep"). Groups without an asleep interval are absent. With ``offset=None`` (a
    reader that converts offsets later) the two offset columns are left out.

    Each asleep interval contributes only the minutes after the latest end seen so far; the wake
    gap before it is the time since that end.
    """
    prev_end = pl.col("end_utc").cum_max().shift(1).over(by)
    asleep = (
        stages.filter(pl.col("stage").is_in(ASLEEP) & pl.col(by).is_not_null())
        .sort(by, "start_utc", "end_utc")
        .with_columns(prev_end.alias("__prev"))
        .with_columns(
            minutes_between(pl.max_horizontal("start_utc", "__prev"), pl.col("end_utc"))
            .clip(lower_bound=0)
            .alias("__m"),
            minutes_between(pl.col("__prev"), pl.col("start_utc")).alias("__gap"),
        )
    )
    offsets = (
        []
        if offset is None
        else [
            pl.col(offset).sort_by("start_utc").first().alias("onset_off"),
            pl.col(offset).sort_by("start_utc").last().alias("final_off"),
        ]
    )
    return asleep.group_by(by).agg(
        pl.col("__m").sum().alias("tst_min"),
        pl.col("start_utc").min().alias("onset_utc"),
        pl.col("end_utc").max().alias("final_utc"),
        *offsets,
        (minutes_between(pl.col("start_utc").min(), pl.col("end_utc").max()) - pl.col("__m").sum())
        .clip(lower_bound=0)
        .alias("waso_min"),
        (pl.col("__gap") > AWAKENING_MIN).sum().cast(pl.Int32).alias("awakenings"),
        *[pl.col("__m").filter(pl.col("stage") == s).sum().alias(f"{s}_min") for s in STAGED],
        pl.col("stage").is_in(STAGED).any().alias("staged"),
    )


__all__ = [
    "ASLEEP",
    "AWAKENING_MIN",
    "NIGHT_RULE",
    "STAGED",
    "assign_nights",
    "flag_main_sleep",
    "minutes_between",
    "summarise_stages",
]
