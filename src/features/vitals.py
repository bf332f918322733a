"""Nightly vitals beside HRV: respiratory rate, skin-temperature deviation, SpO2, daytime HR and
the nocturnal HR dip (METRICS.md "Arousal / inhibition balance").

Which night a vitals value belongs to is one rule, used by resting HR as well: a value stamped
inside the main sleep belongs to that night (WHOOP and Oura stamp their nightly values at sleep
onset, often before local midnight); any other value belongs to its local date (daily values such
as Fitbit's or Apple's resting HR). Respiratory rate and SpO2 are *sleep* values: samples during
the day (Garmin measures respiration all day) never count; a date-level vendor summary (a row
covering >= 12 h, e.g. Fitbit's daily SpO2) fills a night that has no value inside the sleep.

Skin temperature: a vendor's own deviation (Oura ``temperature_deviation``, Garmin and Fitbit
baseline-relative values) is used as it is. Where only an absolute temperature exists (WHOOP,
Apple sleeping wrist temperature, Fitbit nightly temperature) the deviation is taken from the
median of the same source's previous nights (causal: never the night itself or later ones), because
wrist and finger sensors differ by degrees between devices but their night-to-night changes agree.
"""

from __future__ import annotations

import polars as pl

from tunewell.features.intervals import in_order, outside, within
from tunewell.lake.timezones import local_date, local_hour, local_time

KEYS = ["user_id", "sleep_date"]
SUMMARY_MIN = 60.0  # a row spanning >= 1 h is the vendor's summary of that span, not one sample
DAILY_SPAN_H = 12.0  # a row spanning >= 12 h is a date-level summary (Fitbit daily SpO2)
MIN_SAMPLES = (
    4  # point samples inside the sleep before a nightly mean is trusted (Apple: hourly SpO2)
)
TEMP_REF_DAYS = 28  # previous nights whose median is the reference for absolute temperatures
TEMP_REF_MIN = 7  # ... needing this many of them
DAY_START_H, DAY_END_H = 10, 20  # daytime HR window: local clock on the day before sleep_date
DAY_BIN = "5m"
DAY_MIN_BINS = 60  # of the window's 120 five-minute bins (>= 5 of the 10 hours)
SLEEP_METRICS = {"resp_rate": "respiration_rate", "spo2_pct": "spo2"}
LOOKBACK_DAYS = TEMP_REF_DAYS + 1  # the day-before HR window adds one day


def by_night(vitals: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Every vitals row with the ``sleep_date`` it belongs to and whether it lies in the sleep.

    Inside the main sleep (start inclusive, end exclusive): that night. Otherwise: its local date.
    """
    v = vitals.select(
        "user_id", "start_utc", "end_utc", "utc_offset_min", "source", "metric", "value"
    ).with_row_index("_i")
    eps = main.select("user_id", "sleep_date", "episode_start_utc", "episode_end_utc")
    inside = within(v, eps, at="start_utc", start="episode_start_utc", end="episode_end_utc")
    inside = inside.drop("episode_start_utc", "episode_end_utc").with_columns(
        pl.lit(True).alias("in_sleep")
    )
    outside = v.join(inside.select("_i"), on="_i", how="anti").with_columns(
        local_time().dt.date().alias("sleep_date"), pl.lit(False).alias("in_sleep")
    )
    span = (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds().fill_null(0) / 60.0
    return (
        pl.concat([inside, outside.select(inside.collect_schema().names())])
        .with_columns(span.alias("span_min"))
        .drop("_i")
    )


def _label() -> pl.Expr:
    """``source:metric`` of the rows used, several joined by ``+`` (a night split at midnight
    between two devices names both)."""
    tag = pl.concat_str("source", pl.lit(":"), "metric")
    return tag.unique().sort().str.join("+")


def _sleep_metric(nv: pl.LazyFrame, name: str, metric: str) -> pl.LazyFrame:
    """Mean of the values inside the main sleep, else of a date-level summary for the date."""
    m = nv.filter(pl.col("metric") == metric)
    inside = (
        m.filter(pl.col("in_sleep"))
        .group_by(KEYS)
        .agg(
            pl.col("value").mean().alias("_v_in"),
            _label().alias("_s_in"),
            ((pl.col("span_min") >= SUMMARY_MIN).any() | (pl.len() >= MIN_SAMPLES)).alias("_ok_in"),
        )
    )
    daily = (
        m.filter(~pl.col("in_sleep") & (pl.col("span_min") >= DAILY_SPAN_H * 60))
        .group_by(KEYS)
        .agg(pl.col("value").mean().alias("_v_day"), _label().alias("_s_day"))
    )
    use_in = pl.col("_v_in").is_not_null()
    src = "spo2" if name == "spo2_pct" else name
    return inside.join(daily, on=KEYS, how="full", coalesce=True).select(
        *KEYS,
        pl.when(use_in).then("_v_in").otherwise("_v_day").alias(name),
        pl.when(use_in).then("_s_in").otherwise("_s_day").alias(f"{src}_source"),
        pl.when(use_in).then("_ok_in").otherwise(pl.col("_v_day").is_not_null()).alias(f"{src}_ok"),
    )


def _temperature(nv: pl.LazyFrame) -> pl.LazyFrame:
    """Vendor deviation where exported, else absolute temperature minus the same source's
    median of the previous ``TEMP_REF_DAYS`` nights (>= ``TEMP_REF_MIN`` of them)."""
    dev = (
        nv.filter(pl.col("metric") == "temperature_deviation")
        .group_by(KEYS)
        .agg(pl.col("value").mean().alias("_dev"), _label().alias("_dev_s"))
    )
    absolute = (
        nv.filter(pl.col("metric") == "skin_temp")
        .group_by(*KEYS, "source")
        .agg(pl.col("value").mean().alias("_abs"))
    )
    offsets = pl.LazyFrame({"_k": pl.int_range(1, TEMP_REF_DAYS + 1, eager=True).cast(pl.Int32)})
    ref = (
        absolute.select(*KEYS, "source")
        .join(offsets, how="cross")
        .with_columns((pl.col("sleep_date") - pl.duration(days=pl.col("_k"))).alias("_d"))
        .join(
            absolute.select("user_id", "source", pl.col("sleep_date").alias("_d"), "_abs"),
            on=["user_id", "source", "_d"],
        )
        .group_by(*KEYS, "source")
        .agg(pl.col("_abs").median().alias("_ref"), pl.len().alias("_n_ref"))
    )
    own = (
        absolute.join(ref, on=[*KEYS, "source"], how="left")
        .with_columns(
            pl.when(pl.col("_n_ref").fill_null(0) >= TEMP_REF_MIN)
            .then(pl.col("_abs") - pl.col("_ref"))
            .alias("_own")
        )
        .group_by(KEYS)
        .agg(
            pl.col("_own").mean().alias("_own"),
            pl.concat_str("source", pl.lit(":skin_temp"))
            .unique()
            .sort()
            .str.join("+")
            .alias("_own_s"),
        )
    )
    use_dev = pl.col("_dev").is_not_null()
    value = pl.when(use_dev).then("_dev").otherwise("_own")
    return dev.join(own, on=KEYS, how="full", coalesce=True).select(
        *KEYS,
        value.alias("skin_temp_dev"),
        pl.when(use_dev).then("_dev_s").otherwise("_own_s").alias("skin_temp_dev_source"),
        value.is_not_null().alias("skin_temp_dev_ok"),
    )


def day_hr(hr: pl.LazyFrame, workouts: pl.LazyFrame) -> pl.LazyFrame:
    """Daytime mean HR for each sleep date: local DAY_START_H..DAY_END_H of the day before.

    Per-sample HR only (not the vendor's sleep or workout streams or daily statistics), outside
    recorded workouts; the mean of 5-minute bin means, so a device that samples every second
    during a walk does not outweigh the quiet hours it sampled every 5 minutes.
    """
    s = hr.filter(pl.col("context").is_null() | (pl.col("context") == "sample")).select(
        "user_id", "start_utc", "utc_offset_min", "bpm", "source"
    )
    daytime = s.filter(local_hour().is_between(DAY_START_H, DAY_END_H - 1)).collect()
    w = workouts.select("user_id", "start_utc", "end_utc").rename(
        {"start_utc": "_w_start", "end_utc": "_w_end"}
    )
    s = outside(
        in_order(daytime, ["user_id", "start_utc"]).lazy(),
        w,
        at="start_utc",
        start="_w_start",
        end="_w_end",
    ).with_columns((local_date() + pl.duration(days=1)).alias("sleep_date"))
    bins = s.group_by(*KEYS, pl.col("start_utc").dt.truncate(DAY_BIN).alias("_b")).agg(
        pl.col("bpm").mean().alias("_m"), pl.col("source").first().alias("_src")
    )
    day = bins.group_by(KEYS).agg(
        pl.col("_m").mean().alias("_mean"),
        pl.len().alias("_bins"),
        pl.col("_src").unique().sort().str.join("+").alias("hr_day_source"),
    )
    ok = pl.col("_bins") >= DAY_MIN_BINS
    return day.select(
        *KEYS,
        pl.when(ok).then("_mean").alias("hr_day_mean"),
        "hr_day_source",
        ok.alias("hr_day_ok"),
    )


def hr_dip_pct(day: str = "hr_day_mean", sleep: str = "hr_sleep_mean") -> pl.Expr:
    """Nocturnal HR dip = (day − sleep) / day × 100 (null unless both are measured)."""
    return (pl.col(day) - pl.col(sleep)) / pl.col(day) * 100.0


def nightly_vitals(vitals: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Respiratory rate, SpO2 and skin-temperature deviation per user and sleep date."""
    nv = by_night(vitals, main).collect().lazy()
    parts = [_sleep_metric(nv, name, metric) for name, metric in SLEEP_METRICS.items()]
    parts.append(_temperature(nv))
    out = parts[0]
    for p in parts[1:]:
        out = out.join(p, on=KEYS, how="full", coalesce=True)
    return out
