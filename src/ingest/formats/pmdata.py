"""PMData self-reports from the PMSys app: ``wellness.csv`` and ``srpe.csv``.

Timestamps are UTC (``Z``). A wellness answer refers to the local day it was given on, so its
``date`` is the local date of ``effective_time_frame`` in the user's zone. ``srpe.csv`` gives the
session's end time and minutes; the start is derived, and session-RPE load (RPE × minutes) is left
to the features, which own every derived number. ``injury.csv`` and ``soreness_area`` are not read:
no table holds body-area codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError, csv_header
from tunewell.ingest.timeparse import require_times
from tunewell.lake.timezones import local_date

SOURCE = "pmdata"
PRIORITY = 30

WELLNESS_ITEMS = (
    "fatigue",
    "mood",
    "readiness",
    "sleep_duration_h",
    "sleep_quality",
    "soreness",
    "stress",
)
WELLNESS_HEADER = ("effective_time_frame", "fatigue", "mood", "readiness")
SRPE_HEADER = ("end_date_time", "activity_names", "perceived_exertion", "duration_min")


def kind(head: bytes) -> str | None:
    cols = csv_header(head)
    if all(c in cols for c in WELLNESS_HEADER):
        return "wellness"
    if all(c in cols for c in SRPE_HEADER):
        return "srpe"
    return None


def sniff(path: Path, head: bytes) -> bool:
    return kind(head) is not None


def _utc(col: str) -> pl.Expr:
    return pl.col(col).str.to_datetime(strict=False, time_zone="UTC", time_unit="us")


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        k = kind(fh.read(4096))
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
        df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
    except pl.exceptions.PolarsError as exc:
        raise ReadError(f"{ctx.display}: unreadable CSV ({exc})") from exc
    if df.is_empty():
        return
    if k == "wellness":
        yield "self_report", _wellness(ctx, df)
    elif k == "srpe":
        yield "workout", _srpe(ctx, df)
    else:
        raise ReadError(f"{ctx.display}: not a PMData wellness or srpe file")


def _wellness(ctx: FileContext, df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(start_utc=_utc("effective_time_frame"))
    require_times(ctx, df, "start_utc")
    items = [c for c in WELLNESS_ITEMS if c in df.columns]
    long = df.unpivot(index="start_utc", on=items, variable_name="item", value_name="value")
    long = long.with_columns(pl.col("value").cast(pl.Float64, strict=False)).filter(
        pl.col("value").is_not_null()
    )
    out = ctx.conform(long, "self_report", source=SOURCE)
    # record_id does not depend on date, so the local date can follow the zone that conform chose.
    return out.with_columns(date=local_date())


def _srpe(ctx: FileContext, df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(
        end_utc=_utc("end_date_time"), minutes=pl.col("duration_min").cast(pl.Float64, strict=False)
    )
    require_times(ctx, df, "end_utc")
    names = (
        pl.col("activity_names")
        .str.extract_all(r"[A-Za-z_]+(?: [A-Za-z_]+)*")
        .list.eval(pl.element().str.strip_chars().str.to_lowercase())
        .list.join(", ")
    )
    out = df.select(
        start_utc=pl.col("end_utc") - pl.duration(minutes=pl.col("minutes").fill_null(0)),
        end_utc=pl.col("end_utc"),
        activity=names,
        duration_min=pl.col("minutes"),
        rpe=pl.col("perceived_exertion").cast(pl.Float64, strict=False),
    )
    return ctx.conform(out, "workout", source=SOURCE)
