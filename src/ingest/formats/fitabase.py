"""Fitabase research exports of Fitbit data (``*_merged.csv``).

Each file holds many participants, told apart by the ``Id`` column, while an ingest run belongs to
one user. Mixing participants under one user would also collide their rows on the same record ids
and silently lose data, so a file with more than one Id needs ``options["fitabase_id"]`` naming the
participant to take; a file with a single Id is taken whole. A file that does not contain the
chosen Id yields no rows.

Times are the participant's local clock in US 12-hour form (``4/12/2016 12:00:00 AM``) and are
converted with the user's zone. Daily, hourly and minute steps all go to ``steps`` with their own
interval; ``dailyActivity`` and ``dailySteps`` give the same day the same record id.

``sleepDay`` carries only a calendar day and the day's totals (no start or end), so it is stored as
Fitbit's daily figures in ``vendor_score`` (total_minutes_asleep, total_time_in_bed,
total_sleep_records) rather than as an invented sleep episode that would corrupt timing metrics such
as midpoint or regularity. Its exact duplicate rows share one record id and are dropped here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError, csv_header
from tunewell.ingest.timeparse import local_to_utc, require_times

SOURCE = "fitabase"
PRIORITY = 30

DAY_FMT = "%m/%d/%Y"
TIME_FMT = "%m/%d/%Y %I:%M:%S %p"

# kind -> columns (after Id) that identify it
KINDS: dict[str, tuple[str, ...]] = {
    "sleep_day": ("SleepDay", "TotalMinutesAsleep", "TotalTimeInBed"),
    "daily_activity": ("ActivityDate", "TotalSteps"),
    "daily_steps": ("ActivityDay", "StepTotal"),
    "hourly_steps": ("ActivityHour", "StepTotal"),
    "minute_steps_narrow": ("ActivityMinute", "Steps"),
    "minute_steps_wide": ("ActivityHour", "Steps00"),
    "heartrate_seconds": ("Time", "Value"),
    "weight": ("Date", "WeightKg"),
}
SLEEP_DAY_SCORES = {
    "TotalMinutesAsleep": "total_minutes_asleep",
    "TotalTimeInBed": "total_time_in_bed",
    "TotalSleepRecords": "total_sleep_records",
}


def kind(head: bytes) -> str | None:
    cols = csv_header(head)
    if not cols or cols[0] != "Id":
        return None
    for k, needed in KINDS.items():
        if all(c in cols for c in needed):
            return k
    return None


def sniff(path: Path, head: bytes) -> bool:
    return kind(head) is not None


def _participant(ctx: FileContext, lf: pl.LazyFrame) -> pl.LazyFrame:
    chosen = ctx.options.get("fitabase_id")
    if chosen is None:
        ids = lf.select(pl.col("Id").unique()).collect()["Id"]
        if ids.len() > 1:
            raise ReadError(
                f"{ctx.display}: Fitabase file holds {ids.len()} participants (Id); "
                "choose one with tunewell ingest --fitabase-id <Id> (or fitabase_id under "
                "[users.<id>.options] in tunewell.toml)"
            )
        return lf
    return lf.filter(pl.col("Id") == str(chosen))


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        k = kind(fh.read(4096))
    if k is None:
        raise ReadError(f"{ctx.display}: not a Fitabase CSV this reader knows")
    try:
        lf = pl.scan_csv(ctx.path, infer_schema=False).filter(pl.col("Id").is_not_null())
        df = _participant(ctx, lf).collect()
    except pl.exceptions.PolarsError as exc:
        raise ReadError(f"{ctx.display}: unreadable CSV ({exc})") from exc
    if df.is_empty():
        return
    user = ctx.user
    if k == "sleep_day":
        yield "vendor_score", _sleep_day(ctx, df)
    elif k in ("daily_activity", "daily_steps"):
        day_col, steps_col = KINDS[k]
        yield "steps", _interval_steps(ctx, df, day_col, steps_col, DAY_FMT, pl.duration(days=1))
    elif k == "hourly_steps":
        yield (
            "steps",
            _interval_steps(ctx, df, "ActivityHour", "StepTotal", TIME_FMT, pl.duration(hours=1)),
        )
    elif k == "minute_steps_narrow":
        yield (
            "steps",
            _interval_steps(ctx, df, "ActivityMinute", "Steps", TIME_FMT, pl.duration(minutes=1)),
        )
    elif k == "minute_steps_wide":
        minutes = [c for c in df.columns if c.startswith("Steps") and c[5:].isdigit()]
        long = df.unpivot(index="ActivityHour", on=minutes, variable_name="m", value_name="Steps")
        long = long.with_columns(
            ActivityMinute=_time(pl.col("ActivityHour"), TIME_FMT)
            + pl.duration(minutes=pl.col("m").str.slice(5).cast(pl.Int64))
        )
        yield "steps", _steps_frame(ctx, long, "ActivityMinute", "Steps", pl.duration(minutes=1))
    elif k == "heartrate_seconds":
        t = df.with_columns(t=_time(pl.col("Time"), TIME_FMT))
        require_times(ctx, t, "t")
        hr = t.select(
            start_utc=local_to_utc(pl.col("t"), user),
            bpm=pl.col("Value").cast(pl.Float64, strict=False),
            context=pl.lit("sample"),
        ).filter(pl.col("bpm").is_not_null())
        yield "heart_rate", ctx.conform(hr, "heart_rate", source=SOURCE)
    elif k == "weight":
        t = df.with_columns(t=_time(pl.col("Date"), TIME_FMT))
        require_times(ctx, t, "t")
        w = t.select(
            start_utc=local_to_utc(pl.col("t"), user),
            metric=pl.lit("weight"),
            value=pl.col("WeightKg").cast(pl.Float64, strict=False),
            unit=pl.lit("kg"),
        ).filter(pl.col("value").is_not_null())
        yield "vitals", ctx.conform(w, "vitals", source=SOURCE)


def _time(col: pl.Expr, fmt: str) -> pl.Expr:
    return col.str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")


def _interval_steps(
    ctx: FileContext, df: pl.DataFrame, time_col: str, steps_col: str, fmt: str, length: pl.Expr
) -> pl.DataFrame:
    df = df.with_columns(_time(pl.col(time_col), fmt).alias(time_col))
    return _steps_frame(ctx, df, time_col, steps_col, length)


def _steps_frame(
    ctx: FileContext, df: pl.DataFrame, time_col: str, steps_col: str, length: pl.Expr
) -> pl.DataFrame:
    require_times(ctx, df, time_col)
    t = pl.col(time_col)
    out = df.select(
        start_utc=local_to_utc(t, ctx.user),
        end_utc=local_to_utc(t + length, ctx.user),
        steps=pl.col(steps_col).cast(pl.Float64, strict=False),
    ).filter(pl.col("steps").is_not_null())
    return ctx.conform(out, "steps", source=SOURCE)


def _sleep_day(ctx: FileContext, df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(t=_time(pl.col("SleepDay"), TIME_FMT))
    require_times(ctx, df, "t")
    present = [c for c in SLEEP_DAY_SCORES if c in df.columns]
    long = df.unpivot(index="t", on=present, variable_name="name", value_name="value")
    out = long.select(
        start_utc=local_to_utc(pl.col("t"), ctx.user),
        date=pl.col("t").dt.date(),
        vendor=pl.lit("fitbit"),
        name=pl.col("name").replace_strict(SLEEP_DAY_SCORES),
        value=pl.col("value").cast(pl.Float64, strict=False),
    )
    out = ctx.conform(out, "vendor_score", source=SOURCE)
    return out.unique("record_id", keep="first", maintain_order=True)
