"""Row-level validity rules per silver table (physiological ranges, time order, no future).

Rows that break a rule are dropped from the batch and counted per rule in the run report, so
a device glitch (HR 255, an RR of 40 ms) never reaches the features, and nobody loses track of it.
The ranges come from DESIGN.md (HR 25–230 bpm, RR 300–2000 ms, SpO2 70–100).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

# Accept up to a day in the future: device clocks drift and zones confuse exporters.
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)

VITAL_RANGES = {
    "resting_hr": (25, 150),
    "respiration_rate": (4, 60),
    "spo2": (70, 100),
    "temperature_deviation": (-5, 5),
    "skin_temp": (20, 45),
    "stress": (0, 100),
    "weight": (20, 400),
}


def _vital_ok() -> pl.Expr:
    expr = pl.lit(True)
    for metric, (lo, hi) in VITAL_RANGES.items():
        expr = pl.when(pl.col("metric") == metric).then(
            pl.col("value").is_between(lo, hi)
        ).otherwise(expr)
    return expr


def rules(table: str) -> dict[str, pl.Expr]:
    """Named boolean expressions that must be true for a row to be kept."""
    now = datetime.now(UTC) + FUTURE_SLACK
    base = {
        "start_utc not null": pl.col("start_utc").is_not_null(),
        "start_utc not in the future": pl.col("start_utc") <= pl.lit(now),
        "start_utc after 1990": pl.col("start_utc") >= pl.lit(EARLIEST),
        "start before end": pl.col("end_utc").is_null() | (pl.col("end_utc") >= pl.col("start_utc")),
        "utc offset within ±14 h": pl.col("utc_offset_min").is_between(-14 * 60, 14 * 60),
    }
    specific = {
        "heart_rate": {
            "bpm in 25..230": pl.col("bpm").is_between(25, 230),
        },
        "rr_interval": {"rr_ms in 300..2000": pl.col("rr_ms").is_between(300, 2000)},
        "hrv": {
            "value_ms in 1..500": pl.col("value_ms").is_between(1, 500),
            "metric is rmssd or sdnn": pl.col("metric").is_in(["rmssd", "sdnn"]),
        },
        "sleep_episode": {
            "episode shorter than 24 h": (pl.col("end_utc") - pl.col("start_utc"))
            <= pl.duration(hours=24),
            "efficiency 0..100": pl.col("efficiency_pct").is_null()
            | pl.col("efficiency_pct").is_between(0, 100),
            "tst not negative": pl.col("tst_min").is_null() | (pl.col("tst_min") >= 0),
        },
        "sleep_stage": {
            "known stage": pl.col("stage").is_in(
                ["awake", "light", "deep", "rem", "asleep", "in_bed"]),
            "end given": pl.col("end_utc").is_not_null(),
        },
        "steps": {"steps 0..100000": pl.col("steps").is_between(0, 100_000)},
        "workout": {
            "avg_hr in range": pl.col("avg_hr").is_null() | pl.col("avg_hr").is_between(25, 230),
            "rpe 0..10": pl.col("rpe").is_null() | pl.col("rpe").is_between(0, 10),
        },
        "vitals": {"value in the metric's range": _vital_ok()},
    }
    return base | specific.get(table, {})


def check(table: str, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``df`` into kept rows and dropped rows (with the first failed rule in ``failed``)."""
    if df.is_empty():
        return df, df.with_columns(pl.lit(None, dtype=pl.String).alias("failed"))
    r = rules(table)
    failed = pl.lit(None, dtype=pl.String)
    for name, expr in reversed(r.items()):
        failed = pl.when(expr.fill_null(False).not_()).then(pl.lit(name)).otherwise(failed)
    tagged = df.with_columns(failed.alias("failed"))
    good = tagged.filter(pl.col("failed").is_null()).drop("failed")
    bad = tagged.filter(pl.col("failed").is_not_null())
    return good, bad
