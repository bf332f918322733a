"""MMASH-style recordings: ``RR.csv`` (Polar H7 beat intervals) and ``Actigraph.csv`` (1 Hz).

Both files give time as a day index and a local clock time with no date, so the recording's first
date must come from ``options["start_date"]`` (a ``datetime.date`` or ISO string); without it the
file cannot be placed in time and is refused. Days are counted from the data rather than trusted:
the day label rises by one at midnight in most files but jumps from 1 to -29 in others, so a new
day starts where the label increases or where the clock goes back by more than 12 h.

RR rows carry whole seconds while several beats fall in one second; the beats of one second are
spread inside it by their own intervals (first beat on the second, the next ones ``ibi`` later,
squeezed to fit the second if artefacts make them too long), so every beat keeps a distinct,
ordered time and the intervals themselves stay exact. Out-of-range intervals are left for
validation to drop and count.

Actigraph seconds become per-minute step sums and per-minute mean heart rate (HR 0 = no reading).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError, csv_header
from tunewell.ingest.timeparse import local_to_utc

SOURCE = "rr_csv"
ACTIGRAPH_SOURCE = "actigraph_csv"
PRIORITY = 30
DEVICE_RR = "polar_h7"
DEVICE_ACTIGRAPH = "actigraph_wgt3x-bt"


def kind(head: bytes) -> str | None:
    cols = set(csv_header(head))
    if {"ibi_s", "day", "time"} <= cols:
        return "rr"
    if {"Axis1", "Steps", "HR", "day", "time"} <= cols:
        return "actigraph"
    return None


def sniff(path: Path, head: bytes) -> bool:
    return kind(head) is not None


def _start_date(ctx: FileContext) -> date:
    value = ctx.options.get("start_date")
    if value is None:
        raise ReadError(
            f"{ctx.display}: this recording has day numbers and clock times only; give the date "
            "of day 1 (tunewell ingest --start-date YYYY-MM-DD, or start_date under "
            "[users.<id>.options] in tunewell.toml)"
        )
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ReadError(f"{ctx.display}: start_date is not a date: {value}") from exc
    return value


def local_clock(df: pl.DataFrame, start: date) -> pl.DataFrame:
    """Add ``clock`` (naive local datetime) from ``day`` and ``time``."""
    secs = pl.col("time").str.strip_chars().str.to_time("%H:%M:%S", strict=False)
    df = df.with_columns(
        _s=secs.dt.hour().cast(pl.Int64) * 3600
        + secs.dt.minute().cast(pl.Int64) * 60
        + secs.dt.second().cast(pl.Int64),
        _d=pl.col("day").cast(pl.Int64, strict=False),
    )
    if df["_s"].null_count() or df["_d"].null_count():
        raise ValueError("unparseable day or time")
    step = (
        pl.when(pl.col("_d").diff() > 0)
        .then(pl.col("_d").diff())
        .when(pl.col("_s").diff() < -12 * 3600)
        .then(1)
        .otherwise(0)
        .fill_null(0)
    )
    first_day = int(df["_d"][0]) if df.height else 1
    base = pl.lit(start).cast(pl.Datetime("us")) + pl.duration(days=first_day - 1)
    return df.with_columns(
        clock=base + pl.duration(days=step.cum_sum(), seconds=pl.col("_s"))
    ).drop("_s", "_d")


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        k = kind(fh.read(4096))
    if k is None:
        raise ReadError(f"{ctx.display}: not an RR.csv or Actigraph.csv file")
    start = _start_date(ctx)
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
        df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
        df = local_clock(df, start)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ReadError(f"{ctx.display}: unreadable recording ({exc})") from exc
    if df.is_empty():
        return
    if k == "rr":
        yield "rr_interval", _rr(ctx, df)
    else:
        yield from _actigraph(ctx, df)


def _rr(ctx: FileContext, df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(ibi=pl.col("ibi_s").cast(pl.Float64, strict=False)).filter(
        pl.col("ibi").is_not_null()
    )
    within = (pl.col("ibi").cum_sum() - pl.col("ibi").first()).over("clock")
    df = df.with_columns(_off=within)
    squeeze = (
        pl.when(pl.col("_off").max().over("clock") >= 1)
        .then(0.999 / pl.col("_off").max().over("clock"))
        .otherwise(1.0)
    )
    out = df.select(
        start_utc=local_to_utc(pl.col("clock"), ctx.user)
        + pl.duration(
            # + the beat's rank in microseconds keeps zero-length artefact intervals distinct
            microseconds=(pl.col("_off") * squeeze * 1e6).round().cast(pl.Int64)
            + pl.int_range(pl.len()).over("clock")
        ),
        rr_ms=pl.col("ibi") * 1000,
    )
    return ctx.conform(out, "rr_interval", source=SOURCE, device=DEVICE_RR)


def _actigraph(ctx: FileContext, df: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    df = df.with_columns(
        minute=pl.col("clock").dt.truncate("1m"),
        steps=pl.col("Steps").cast(pl.Float64, strict=False),
        hr=pl.col("HR").cast(pl.Float64, strict=False),
    ).with_columns(hr=pl.when(pl.col("hr") > 0).then(pl.col("hr")))
    per_min = (
        df.group_by("minute", maintain_order=True)
        .agg(steps=pl.col("steps").sum(), bpm=pl.col("hr").mean())
        .with_columns(
            start_utc=local_to_utc(pl.col("minute"), ctx.user),
            end_utc=local_to_utc(pl.col("minute") + pl.duration(minutes=1), ctx.user),
        )
    )
    steps = per_min.select("start_utc", "end_utc", "steps")
    yield "steps", ctx.conform(steps, "steps", source=ACTIGRAPH_SOURCE, device=DEVICE_ACTIGRAPH)
    hr = per_min.filter(pl.col("bpm").is_not_null()).select(
        "start_utc", "end_utc", "bpm", context=pl.lit("sample")
    )
    yield (
        "heart_rate",
        ctx.conform(hr, "heart_rate", source=ACTIGRAPH_SOURCE, device=DEVICE_ACTIGRAPH),
    )
