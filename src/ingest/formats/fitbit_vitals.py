"""Fitbit / Google Takeout nightly vitals CSVs: breathing rate, SpO2 and skin temperature.

The Takeout keeps these apart from the JSON logs (``Sleep/``, ``Oxygen Saturation (SpO2)/``,
``Temperature/`` or ``Heart Rate Variability/`` folders, one file per month), each with its own
header, which is how they are told apart (names vary between export versions):

- ``Respiratory Rate Summary - <date>.csv``: ``timestamp, full_sleep_breathing_rate, …`` (plus
  deep/light/REM rates), one row per main sleep, ``timestamp`` local at the sleep's end;
- ``Daily Respiratory Rate Summary - <date>.csv``: ``timestamp, daily_respiratory_rate``;
- ``Daily SpO2 - <date>.csv``: ``timestamp, average_value, lower_bound, upper_bound`` (the average
  over that night's sleep, dated by the wake-up day; some versions end the time in ``Z``);
- ``Minute SpO2 - <date>.csv``: ``timestamp, value``, one reading a minute during sleep (the
  header is too generic to claim alone, so the file name must say it);
- ``Computed Temperature - <date>.csv``: ``type, sleep_start, sleep_end, temperature_samples,
  nightly_temperature, baseline_relative_sample_sum, …``: the night's absolute skin temperature
  and the sum of the samples' deviations from Fitbit's personal baseline, so
  ``baseline_relative_sample_sum / temperature_samples`` is Fitbit's mean deviation (empty or NaN
  until Fitbit has a baseline).

Breathing rate and SpO2 are nightly summaries dated by day, so each becomes a date-level row
(local midnight of that date + 24 h) that features give to the night of that date; temperature
rows span the sleep they describe. Times are local without an offset, like the rest of the Fitbit
export: the user's zone history places them (tz_source user_setting). A value of 0 means "not
measured" in these files and is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.timeparse import local_to_utc, parse_local, require_times

SOURCE = "fitbit"
PRIORITY = 30

# header start -> (kind, time column, value column)
_KINDS = {
    "timestamp,full_sleep_breathing_rate": ("breathing", "timestamp", "full_sleep_breathing_rate"),
    "timestamp,daily_respiratory_rate": ("breathing", "timestamp", "daily_respiratory_rate"),
    "timestamp,average_value,lower_bound,upper_bound": ("spo2", "timestamp", "average_value"),
    "type,sleep_start,sleep_end,temperature_samples,nightly_temperature": (
        "temperature",
        "sleep_start",
        "nightly_temperature",
    ),
}
_METRIC = {"breathing": ("respiration_rate", "rpm"), "spo2": ("spo2", "%")}


def _kind(path: Path, head: bytes) -> tuple[str, str, str] | None:
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    line = line.strip().replace('"', "").replace(" ", "")
    if line == "timestamp,value" and Path(path).name.lower().startswith("minute spo2"):
        return ("spo2_minute", "timestamp", "value")
    return next((v for k, v in _KINDS.items() if line.startswith(k)), None)


def sniff(path: Path, head: bytes) -> bool:
    return _kind(path, head) is not None


def _num(col: str) -> pl.Expr:
    v = pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.when(v.is_finite() & (v != 0)).then(v)


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        found = _kind(ctx.path, fh.read(4096))
    if found is None:
        raise ReadError(f"{ctx.display}: not a Fitbit vitals CSV this reader knows")
    kind, tcol, vcol = found
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
    except Exception as exc:
        raise ReadError(f"{ctx.display}: unreadable CSV ({exc})") from exc
    df = df.rename({c: c.strip() for c in df.columns})
    if df.is_empty():
        ctx.notes.append("no rows")
        return
    df = df.with_columns(t=parse_local(pl.col(tcol)))
    require_times(ctx, df, "t")
    if kind == "temperature":
        yield "vitals", _temperature(ctx, df)
        return
    if kind == "spo2_minute":
        out = df.select(
            start_utc=local_to_utc(pl.col("t"), ctx.user),
            metric=pl.lit("spo2"),
            value=_num("value"),
            unit=pl.lit("%"),
        ).filter(pl.col("value").is_not_null())
        yield (
            "vitals",
            ctx.conform(out, "vitals", source=SOURCE).unique("record_id", maintain_order=True),
        )
        return
    metric, unit = _METRIC[kind]
    day = pl.col("t").dt.truncate("1d")
    out = df.select(
        start_utc=local_to_utc(day, ctx.user),
        end_utc=local_to_utc(day + pl.duration(days=1), ctx.user),
        metric=pl.lit(metric),
        value=_num(vcol),
        unit=pl.lit(unit),
    ).filter(pl.col("value").is_not_null())
    yield (
        "vitals",
        ctx.conform(out, "vitals", source=SOURCE).unique("record_id", maintain_order=True),
    )


def _temperature(ctx: FileContext, df: pl.DataFrame) -> pl.DataFrame:
    if "sleep_end" not in df.columns:
        raise ReadError(f"{ctx.display}: Computed Temperature without sleep_end")
    df = df.with_columns(e=parse_local(pl.col("sleep_end")))
    require_times(ctx, df, "e")
    when = {
        "start_utc": local_to_utc(pl.col("t"), ctx.user),
        "end_utc": local_to_utc(pl.col("e"), ctx.user),
        "unit": pl.lit("degC"),
    }
    n = _num("temperature_samples") if "temperature_samples" in df.columns else pl.lit(None)
    rel = (
        pl.col("baseline_relative_sample_sum").str.strip_chars().cast(pl.Float64, strict=False)
        if "baseline_relative_sample_sum" in df.columns
        else pl.lit(None, pl.Float64)
    )
    dev = pl.when(rel.is_finite() & (n > 0)).then(rel / n)
    parts = [
        df.select(**when, metric=pl.lit("skin_temp"), value=_num("nightly_temperature")),
        df.select(**when, metric=pl.lit("temperature_deviation"), value=dev),
    ]
    out = pl.concat(parts, how="vertical_relaxed").filter(pl.col("value").is_not_null())
    return ctx.conform(out, "vitals", source=SOURCE).unique("record_id", maintain_order=True)
