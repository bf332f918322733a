"""WHOOP app export: physiological_cycles.csv, sleeps.csv, workouts.csv, journal_entries.csv.

Every file starts with the cycle's start, end and zone; all clock times in a row are local
wall-clock times of that zone (``UTC-04:00``, ``UTC+05:30``, ``UTCZ``), so UTC is local minus the
row's own offset (``tz_source`` "record"). The open cycle (empty end) still carries last night's
recovery and sleep, which are final; its strain and daily HR are partial and are skipped.

Cycles are dated by their local start + 12 h: a cycle begins at sleep onset, so one starting at
23:30 is the next day's (the day WHOOP shows its recovery for), one starting at 01:00 the same
day's. WHOOP's HRV is RMSSD over the last slow-wave period, stored as window ``last_sws`` and
never mixed with nightly medians.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError, csv_header
from tunewell.lake.sleep_rules import assign_nights

SOURCE = "whoop"
PRIORITY = 20
DEVICE = "whoop"
VENDOR = "whoop"
TIME_FMT = "%Y-%m-%d %H:%M:%S"

_CYCLE = ("Cycle start time", "Cycle end time", "Cycle timezone")
_OPTIONAL = (
    "Activity Strain",
    "Activity name",
    "Answered yes",
    "Asleep duration (min)",
    "Average HR (bpm)",
    "Awake duration (min)",
    "Blood oxygen %",
    "Day Strain",
    "Deep (SWS) duration (min)",
    "Distance (meters)",
    "Duration (min)",
    "Energy burned (cal)",
    "Heart rate variability (ms)",
    "In bed duration (min)",
    "Light sleep duration (min)",
    "Max HR (bpm)",
    "Nap",
    "Notes",
    "Recovery score %",
    "Respiratory rate (rpm)",
    "Resting heart rate (bpm)",
    "Skin temp (celsius)",
    "Sleep consistency %",
    "Sleep debt (min)",
    "Sleep efficiency %",
    "Sleep need (min)",
    "Sleep performance %",
)
_ZONE = re.compile(r"^UTC(?:([+-])(\d{1,2}):?(\d{2}))?Z?$")
_SLEEP_SCORES = {
    "Sleep performance %": "sleep_performance",
    "Sleep consistency %": "sleep_consistency",
    "Sleep need (min)": "sleep_need_min",
    "Sleep debt (min)": "sleep_debt_min",
    "Light sleep duration (min)": "light_sleep_min",
    "Deep (SWS) duration (min)": "deep_sleep_min",
    "REM duration (min)": "rem_sleep_min",
    "Awake duration (min)": "awake_min",
}
_VITALS = {
    "Resting heart rate (bpm)": ("resting_hr", "bpm"),
    "Respiratory rate (rpm)": ("respiration_rate", "rpm"),
    "Skin temp (celsius)": ("skin_temp", "degC"),
    "Blood oxygen %": ("spo2", "%"),
}


def _kind(cols: list[str]) -> str | None:
    if not set(_CYCLE) <= set(cols):  # by name: WHOOP has reordered and added columns before
        return None
    if "Recovery score %" in cols:
        return "cycles"
    if "Workout start time" in cols:
        return "workouts"
    if "Question text" in cols:
        return "journal"
    if "Sleep onset" in cols and "Nap" in cols:
        return "sleeps"
    return None


def sniff(path: Path, head: bytes) -> bool:
    return _kind(csv_header(head)) is not None


def offset_minutes(zone: pl.Expr) -> pl.Expr:
    """``UTC-04:00`` → -240; ``UTCZ``/``UTC`` → 0; anything else → null."""
    z = zone.str.strip_chars()
    sign = pl.when(z.str.extract(_ZONE.pattern, 1) == "-").then(-1).otherwise(1)
    hours = z.str.extract(_ZONE.pattern, 2).cast(pl.Int32).fill_null(0)
    mins = z.str.extract(_ZONE.pattern, 3).cast(pl.Int32).fill_null(0)
    return pl.when(z.str.contains(_ZONE.pattern)).then(sign * (hours * 60 + mins)).cast(pl.Int32)


def _utc(col: str) -> pl.Expr:
    local = pl.col(col).str.strip_chars().str.to_datetime(TIME_FMT, strict=False, time_unit="us")
    return local - pl.duration(minutes=pl.col("utc_offset_min"))


def _num(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)


def _load(path: Path) -> pl.DataFrame:
    try:
        raw = path.read_bytes().decode("utf-8-sig")
        df = pl.read_csv(io.StringIO(raw), infer_schema=False)
    except (UnicodeDecodeError, pl.exceptions.ComputeError) as exc:
        raise ReadError(f"unreadable WHOOP CSV: {exc}") from None
    df = df.rename({c: c.strip() for c in df.columns})
    # Columns come and go between app versions: a missing optional one is empty, not an error.
    df = df.with_columns(
        pl.lit(None, dtype=pl.String).alias(c) for c in _OPTIONAL if c not in df.columns
    )
    df = df.with_columns(offset_minutes(pl.col("Cycle timezone")).alias("utc_offset_min"))
    bad = df.filter(pl.col("utc_offset_min").is_null() & pl.col("Cycle timezone").is_not_null())
    if bad.height:
        raise ReadError(f"unknown WHOOP cycle time zone {bad['Cycle timezone'][0]!r}")
    df = df.with_columns(
        _utc("Cycle start time").alias("cycle_start"),
        _utc("Cycle end time").alias("cycle_end"),
        (
            pl.col("Cycle start time").str.to_datetime(TIME_FMT, strict=False, time_unit="us")
            + pl.duration(hours=12)
        )
        .dt.date()
        .alias("date"),
        pl.lit("record").alias("tz_source"),
    )
    if df["cycle_start"].null_count() > df["Cycle start time"].null_count():
        raise ReadError("WHOOP cycle start times not in 'YYYY-MM-DD HH:MM:SS' form")
    return df.filter(pl.col("cycle_start").is_not_null())


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        kind = _kind(csv_header(fh.read(4096)))
    df = _load(ctx.path)

    def conform(frame: pl.DataFrame, tbl: str) -> pl.DataFrame:
        return ctx.conform(frame, tbl, source=SOURCE, device=DEVICE)

    if kind == "cycles":
        yield from _cycles(df, conform)
    elif kind == "sleeps":
        yield "sleep_episode", conform(_episodes(df, nap=_num_bool("Nap")), "sleep_episode")
    elif kind == "workouts":
        yield "workout", conform(_workouts(df), "workout")
    elif kind == "journal":
        yield "self_report", conform(_journal(df), "self_report")


def _num_bool(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_lowercase().is_in(["true", "1", "yes"])


def _with_sleep(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        _utc("Sleep onset").alias("start_utc"), _utc("Wake onset").alias("end_utc")
    ).filter(pl.col("start_utc").is_not_null() & pl.col("end_utc").is_not_null())


def _episodes(df: pl.DataFrame, nap: pl.Expr | None = None) -> pl.DataFrame:
    """Summary-only episodes: WHOOP's export has stage minutes but no hypnogram."""
    sl = assign_nights(_with_sleep(df))
    main = pl.col("is_main_sleep") if nap is None else pl.col("is_main_sleep") & ~nap
    return sl.select(
        "start_utc",
        "end_utc",
        "utc_offset_min",
        "tz_source",
        "sleep_date",
        main.alias("is_main_sleep"),
        _num("In bed duration (min)").alias("tib_min"),
        _num("Asleep duration (min)").alias("tst_min"),
        _num("Sleep efficiency %").alias("efficiency_pct"),
        "night_rule",
    )


def _cycles(df: pl.DataFrame, conform) -> Iterator[tuple[str, pl.DataFrame]]:
    sl = _with_sleep(df)
    yield "sleep_episode", conform(_episodes(df), "sleep_episode")
    when = ("start_utc", "end_utc", "utc_offset_min", "tz_source")
    hrv = sl.select(
        *when,
        _num("Heart rate variability (ms)").alias("value_ms"),
        pl.lit("rmssd").alias("metric"),
        pl.lit("last_sws").alias("window"),
    ).filter(pl.col("value_ms").is_not_null())
    yield "hrv", conform(hrv, "hrv")
    vitals = pl.concat(
        [
            sl.select(
                *when, _num(col).alias("value"), pl.lit(m).alias("metric"), pl.lit(u).alias("unit")
            )
            for col, (m, u) in _VITALS.items()
            if col in sl.columns
        ]
    ).filter(pl.col("value").is_not_null())
    yield "vitals", conform(vitals, "vitals")

    closed = pl.col("cycle_end").is_not_null()
    names = (
        {"Recovery score %": ("recovery", pl.lit(True))}
        | {c: (n, pl.lit(True)) for c, n in _SLEEP_SCORES.items()}
        | {"Day Strain": ("day_strain", closed)}
    )
    at = (
        pl.col("cycle_start").alias("start_utc"),
        pl.col("cycle_end").alias("end_utc"),
        "utc_offset_min",
        "tz_source",
    )
    scores = pl.concat(
        [
            df.filter(keep).select(
                *at,
                "date",
                pl.lit(VENDOR).alias("vendor"),
                pl.lit(name).alias("name"),
                _num(col).alias("value"),
            )
            for col, (name, keep) in names.items()
            if col in df.columns
        ]
    ).filter(pl.col("value").is_not_null())
    yield "vendor_score", conform(scores, "vendor_score")
    hr = pl.concat(
        [
            df.filter(closed).select(*at, _num(col).alias("bpm"), pl.lit(ctxt).alias("context"))
            for col, ctxt in (("Average HR (bpm)", "daily_avg"), ("Max HR (bpm)", "daily_max"))
            if col in df.columns
        ]
    ).filter(pl.col("bpm").is_not_null())
    yield "heart_rate", conform(hr, "heart_rate")


def _workouts(df: pl.DataFrame) -> pl.DataFrame:
    dist = _num("Distance (meters)") if "Distance (meters)" in df.columns else pl.lit(None)
    return df.select(
        _utc("Workout start time").alias("start_utc"),
        _utc("Workout end time").alias("end_utc"),
        "utc_offset_min",
        "tz_source",
        pl.col("Activity name").str.strip_chars().str.to_lowercase().alias("activity"),
        _num("Duration (min)").alias("duration_min"),
        _num("Average HR (bpm)").alias("avg_hr"),
        _num("Max HR (bpm)").alias("max_hr"),
        _num("Energy burned (cal)").alias("energy_kcal"),
        dist.cast(pl.Float64).alias("distance_m"),
        _num("Activity Strain").alias("vendor_load"),
    ).filter(pl.col("start_utc").is_not_null())


def _journal(df: pl.DataFrame) -> pl.DataFrame:
    item = (
        pl.col("Question text")
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
    )
    notes = pl.col("Notes").str.strip_chars() if "Notes" in df.columns else pl.lit(None)
    return df.select(
        pl.col("cycle_start").alias("start_utc"),
        pl.col("cycle_end").alias("end_utc"),
        "utc_offset_min",
        "tz_source",
        "date",
        item.alias("item"),
        pl.when(_num_bool("Answered yes"))
        .then(1.0)
        .when(
            pl.col("Answered yes").str.strip_chars().str.to_lowercase().is_in(["false", "0", "no"])
        )
        .then(0.0)
        .alias("value"),
        pl.when(notes != "").then(notes).alias("text"),
    ).filter(pl.col("item").is_not_null() & (pl.col("item") != ""))
