"""Lab markers, described: latest value, trend, position against the lab's own range (METRICS.md
"Lab markers (context only)").

Everything here is descriptive and dated. A marker is compared only with the reference range the
lab printed beside that result, never with a range from elsewhere, and a trend is only drawn
through results in the same unit. Nothing here feeds ``nightly_features``, the balance index or
the sleep-quality score (``refresh.FEATURE_INPUTS`` does not list ``lab_result``; tested).

Saliva cortisol waking/bedtime ratio: a waking sample is a saliva cortisol result collected
between 04:00 and 12:00 local time; its bedtime sample is the latest saliva cortisol result in
the same unit 3–16 h before it and outside that morning window (MMASH: in bed 00:46, out of bed
07:30). The ratio is waking ÷ bedtime, descriptive only.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from tunewell.lake.merge import marker_key
from tunewell.lake.timezones import local_time

# Statuses whose values the lab withdrew or never produced.
WITHDRAWN = ("entered-in-error", "cancelled")
# The lab's own abnormal flags (HL7 v3 ObservationInterpretation / v2 table 0078).
ABNORMAL_FLAGS = ("H", "HH", "HU", "L", "LL", "LU", "A", "AA", ">", "<")
POSITIONS = ("below", "within", "above", "no_range", "not_numeric")
LAST_N = 5
WAKING_FROM_H, WAKING_TO_H = 4, 12
BEDTIME_GAP_H = (3, 16)
# The latest result's columns in the summary, in order: the marker's own descriptors keep their
# name, the result's values are latest_<column>.
_LATEST = (
    "code",
    "code_system",
    "name",
    "specimen",
    "unit",
    "latest_start_utc",
    "local_date",
    "latest_value",
    "latest_value_text",
    "latest_reference_low",
    "latest_reference_high",
    "latest_reference_text",
    "latest_interpretation",
    "position",
    "range_pos_pct",
    "out_of_range",
    "latest_source_document",
)


def prepare(lab: pl.LazyFrame | pl.DataFrame, as_of: date | None = None) -> pl.LazyFrame:
    """Rows the lab stands by, up to ``as_of`` (local date), with marker key, local time and the
    result's position against its own range."""
    lf = lab.lazy().filter(~pl.col("status").fill_null("").is_in(WITHDRAWN))
    lf = lf.with_columns(
        marker_key(),
        local_time().alias("local_time"),
    ).with_columns(pl.col("local_time").dt.date().alias("local_date"))
    if as_of is not None:
        lf = lf.filter(pl.col("local_date") <= as_of)
    v, lo, hi = pl.col("value"), pl.col("reference_low"), pl.col("reference_high")
    position = (
        pl.when(v.is_null())
        .then(pl.lit("not_numeric"))
        .when(lo.is_null() & hi.is_null())
        .then(pl.lit("no_range"))
        .when(lo.is_not_null() & (v < lo))
        .then(pl.lit("below"))
        .when(hi.is_not_null() & (v > hi))
        .then(pl.lit("above"))
        .otherwise(pl.lit("within"))
    )
    flags = pl.col("interpretation").fill_null("").str.to_uppercase().str.split(",")
    lab_flag = flags.list.eval(pl.element().str.strip_chars().is_in(ABNORMAL_FLAGS)).list.any()
    return lf.with_columns(
        position.alias("position"),
        # 0 at the lab's low bound, 100 at its high bound (both bounds needed)
        ((v - lo) / (hi - lo) * 100).alias("range_pos_pct"),
        (position.is_in(["below", "above"]) | lab_flag).alias("out_of_range"),
    )


def marker_history(
    lab: pl.LazyFrame | pl.DataFrame, as_of: date | None = None, last_n: int = LAST_N
) -> pl.DataFrame:
    """The last ``last_n`` results of each person's markers, oldest first."""
    lf = prepare(lab, as_of).sort("user_id", "marker", "start_utc")
    rank = pl.int_range(pl.len()).reverse().over("user_id", "marker")
    return lf.filter(rank < last_n).collect()


def marker_summary(
    lab: pl.LazyFrame | pl.DataFrame, as_of: date | None = None, last_n: int = LAST_N
) -> pl.DataFrame:
    """One row per person and marker: latest result, previous one, trend and range position.

    ``trend`` is the sign of the least-squares slope through the last ``last_n`` numeric results
    in the latest result's unit, one per local date (``rising``/``falling``/``unchanged``,
    ``single`` with fewer than two dates); ``slope_per_30d`` is that slope in unit per 30 days.
    Saliva markers follow the time of day (cortisol peaks after waking, melatonin at night), so
    their trend is ``diurnal``, not computed: the waking/bedtime ratio describes them.
    """
    rows = prepare(lab, as_of).sort("user_id", "marker", "start_utc")
    latest = rows.group_by("user_id", "marker").agg(
        pl.len().alias("n_results"),
        pl.col("start_utc").first().alias("first_utc"),
        *(pl.col(c.removeprefix("latest_")).last().alias(c) for c in _LATEST),
    )
    same_unit = (
        rows.join(
            latest.select("user_id", "marker", pl.col("unit").alias("__unit")),
            on=["user_id", "marker"],
        )
        .filter(pl.col("value").is_not_null() & pl.col("unit").eq_missing(pl.col("__unit")))
        # one result per local date (the day's last): repeats of one draw are not a trend
        .group_by("user_id", "marker", "local_date")
        .agg(pl.all().sort_by("start_utc").last())
        .sort("user_id", "marker", "start_utc")
    )
    recent = same_unit.filter(
        pl.int_range(pl.len()).reverse().over("user_id", "marker") < last_n
    ).with_columns(
        (pl.col("start_utc").dt.epoch("s") / 86400.0 / 30.0).alias("__t"),
    )
    t, y = pl.col("__t"), pl.col("value")
    slope = ((t - t.mean()) * (y - y.mean())).sum() / ((t - t.mean()) ** 2).sum()
    trend = recent.group_by("user_id", "marker").agg(
        pl.len().alias("n_trend"),
        pl.when(pl.len() > 1).then(slope).alias("slope_per_30d"),
        pl.col("value").last().alias("__last"),
        pl.col("value").shift(1).last().alias("previous_value"),
        pl.col("local_date").shift(1).last().alias("previous_date"),
    )
    out = latest.join(trend, on=["user_id", "marker"], how="left").with_columns(
        pl.when(pl.col("latest_value").is_not_null())
        .then(pl.col("latest_value") - pl.col("previous_value"))
        .alias("change"),
        pl.when(pl.col("specimen").fill_null("") == "saliva")
        .then(pl.lit("diurnal"))
        .when(pl.col("n_trend").fill_null(0) < 2)
        .then(pl.lit("single"))
        .when(pl.col("slope_per_30d") > 0)
        .then(pl.lit("rising"))
        .when(pl.col("slope_per_30d") < 0)
        .then(pl.lit("falling"))
        .otherwise(pl.lit("unchanged"))
        .alias("trend"),
    )
    diurnal = pl.col("trend") == "diurnal"
    out = out.with_columns(
        pl.when(~diurnal).then(pl.col(c)).alias(c)
        for c in ("slope_per_30d", "previous_value", "previous_date", "change")
    )
    return (
        out.drop("__last", "n_trend")
        .rename({"local_date": "latest_date"})
        .sort("user_id", "name", "marker")
        .collect()
    )


def is_saliva_cortisol() -> pl.Expr:
    return (pl.col("specimen").fill_null("") == "saliva") & pl.col("name").fill_null(
        ""
    ).str.to_lowercase().str.contains("cortisol")


def cortisol_ratios(lab: pl.LazyFrame | pl.DataFrame, as_of: date | None = None) -> pl.DataFrame:
    """Per person and waking sample: saliva cortisol waking ÷ the bedtime sample before it."""
    rows = prepare(lab, as_of).filter(is_saliva_cortisol() & pl.col("value").is_not_null())
    hour = pl.col("local_time").dt.hour()
    morning = (hour >= WAKING_FROM_H) & (hour < WAKING_TO_H)
    cols = ["user_id", "unit", "start_utc", "local_time", "value"]
    waking = rows.filter(morning).select(cols).sort("start_utc")
    bedtime = (
        rows.filter(~morning)
        .select(cols)
        .rename({"start_utc": "bed_utc", "local_time": "bed_local", "value": "bed_value"})
        .sort("bed_utc")
    )
    lo, hi = BEDTIME_GAP_H
    paired = (
        waking.join_asof(
            bedtime,
            left_on="start_utc",
            right_on="bed_utc",
            by=["user_id", "unit"],
            strategy="backward",
            tolerance=f"{hi}h",
            check_sortedness=False,  # sorted by time above, hence within each person
        )
        .filter(
            pl.col("bed_utc").is_not_null()
            & ((pl.col("start_utc") - pl.col("bed_utc")) >= pl.duration(hours=lo))
            & (pl.col("bed_value") > 0)
        )
        .select(
            "user_id",
            pl.col("local_time").dt.date().alias("waking_date"),
            pl.col("start_utc").alias("waking_utc"),
            pl.col("value").alias("waking_value"),
            "bed_utc",
            pl.col("bed_value").alias("bedtime_value"),
            "unit",
            (pl.col("value") / pl.col("bed_value")).alias("waking_bedtime_ratio"),
        )
    )
    return paired.sort("user_id", "waking_utc").collect()


__all__ = [
    "ABNORMAL_FLAGS",
    "POSITIONS",
    "cortisol_ratios",
    "is_saliva_cortisol",
    "marker_history",
    "marker_summary",
    "prepare",
]
