"""Google Fit Takeout ``Daily activity metrics.csv``: one row per local day.

The column set depends on what the person recorded, so columns are found by header name and any
that are absent are simply not emitted. A day is the local calendar day in the user's zone (the
file has no offsets). Daily heart-rate figures keep their meaning in ``context``
(daily_avg / daily_max / daily_min) so they are never mistaken for samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError, csv_header
from tunewell.ingest.timeparse import local_to_utc

SOURCE = "google_fit"
PRIORITY = 35

STEPS = "Step count"
WEIGHT = "Average weight (kg)"
HEART = {
    "Average heart rate (bpm)": "daily_avg",
    "Max heart rate (bpm)": "daily_max",
    "Min heart rate (bpm)": "daily_min",
}
MARKERS = (STEPS, WEIGHT, "Move Minutes count", "Calories (kcal)", "Heart Points", *HEART)


def sniff(path: Path, head: bytes) -> bool:
    cols = csv_header(head)
    return bool(cols) and cols[0] == "Date" and any(m in cols for m in MARKERS)


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
        df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
    except pl.exceptions.PolarsError as exc:
        raise ReadError(f"{ctx.display}: unreadable CSV ({exc})") from exc
    if "Date" not in df.columns:
        raise ReadError(f"{ctx.display}: no Date column")
    df = df.with_columns(
        day=pl.col("Date")
        .str.strip_chars()
        .str.to_datetime("%Y-%m-%d", strict=False, time_unit="us")
    )
    bad = df["day"].null_count()
    if bad:
        raise ReadError(f"{ctx.display}: {bad} unparseable dates in Date")
    day = pl.col("day")
    df = df.with_columns(
        start_utc=local_to_utc(day, ctx.user),
        end_utc=local_to_utc(day + pl.duration(days=1), ctx.user),
    )
    if STEPS in df.columns:
        steps = df.select(
            "start_utc", "end_utc", steps=pl.col(STEPS).cast(pl.Float64, strict=False)
        )
        steps = steps.filter(pl.col("steps").is_not_null())
        yield "steps", ctx.conform(steps, "steps", source=SOURCE)
    hr_cols = [c for c in HEART if c in df.columns]
    if hr_cols:
        hr = df.select(["start_utc", "end_utc", *hr_cols]).unpivot(
            index=["start_utc", "end_utc"], on=hr_cols, variable_name="context", value_name="bpm"
        )
        hr = hr.with_columns(
            context=pl.col("context").replace_strict(HEART),
            bpm=pl.col("bpm").cast(pl.Float64, strict=False),
        ).filter(pl.col("bpm").is_not_null())
        yield "heart_rate", ctx.conform(hr, "heart_rate", source=SOURCE)
    if WEIGHT in df.columns:
        w = df.select(
            "start_utc",
            "end_utc",
            metric=pl.lit("weight"),
            value=pl.col(WEIGHT).cast(pl.Float64, strict=False),
            unit=pl.lit("kg"),
        ).filter(pl.col("value").is_not_null())
        yield "vitals", ctx.conform(w, "vitals", source=SOURCE)
