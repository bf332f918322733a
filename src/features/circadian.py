"""Circadian timing and regularity: SRI, social jet lag, bed/wake SD, IS/IV/L5/M10/RA.

All windows end at the sleep date (the wake-up of that night), so a nightly run can compute them
as soon as the person wakes and the value for a date never depends on later data.
"""

from __future__ import annotations

import math

import polars as pl

from tunewell.features.baselines import window_rows

DAY_MIN = 1440.0
SRI_PAIRS = 7  # day pairs (d−1, d) for d in the last 7 sleep dates
SRI_MIN_PAIRS = 4
SRI_MIN_VALID = 0.66  # Phillips 2017: pairs with < 66 % valid epochs are excluded
SD_NIGHTS = 14
SD_MIN_NIGHTS = 7
SJL_DAYS = 28
SJL_MIN_FREE, SJL_MIN_WORK = 2, 3
RAR_DAYS = 7  # IS/IV/L5/M10 over the 7 complete local days before the sleep date


def _local_min(utc: str, day: pl.Expr) -> pl.Expr:
    """Local minutes after local noon of the day before ``day`` (the noon-split frame)."""
    local = pl.col(utc).dt.replace_time_zone(None) + pl.duration(minutes=pl.col("utc_offset_min"))
    noon = (day - pl.duration(days=1)).cast(pl.Datetime("us")) + pl.duration(hours=12)
    return (local - noon).dt.total_microseconds() / 60e6


def sleep_frames(intervals: pl.LazyFrame) -> pl.LazyFrame:
    """Clip asleep intervals to noon-to-noon frames: (user, day, s, e) in minutes 0..1440.

    Frame ``d`` runs from local noon of d−1 to local noon of d, the same split as the night
    assignment, so a night is never cut in two. An interval is shorter than a day, so it touches
    at most two frames.
    """
    local_start = pl.col("start_utc").dt.replace_time_zone(None) + pl.duration(
        minutes=pl.col("utc_offset_min")
    )
    first = (local_start + pl.duration(hours=12)).dt.date()
    parts = [
        intervals.with_columns((first + pl.duration(days=i)).cast(pl.Date).alias("day"))
        for i in (0, 1)
    ]
    both = pl.concat(parts)
    return (
        both.with_columns(
            _local_min("start_utc", pl.col("day")).clip(0, DAY_MIN).alias("s"),
            (
                _local_min("start_utc", pl.col("day"))
                + (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds() / 60e6
            )
            .clip(0, DAY_MIN)
            .alias("e"),
        )
        .filter(pl.col("e") > pl.col("s"))
        .select("user_id", "day", "s", "e")
    )


def _merge(frames: pl.LazyFrame) -> pl.LazyFrame:
    """Merge overlapping/touching intervals per frame so overlaps are not double counted."""
    return (
        frames.sort("user_id", "day", "s")
        .with_columns(
            (pl.col("s") > pl.col("e").cum_max().shift(1).over("user_id", "day"))
            .fill_null(True)
            .cum_sum()
            .over("user_id", "day")
            .alias("_g")
        )
        .group_by("user_id", "day", "_g")
        .agg(pl.col("s").min(), pl.col("e").max())
        .drop("_g")
    )


def sri(intervals: pl.LazyFrame, valid_days: pl.LazyFrame) -> pl.LazyFrame:
    """Sleep Regularity Index (Phillips et al. 2017) over the last 7 day pairs.

    With 1-min epochs the share of epochs in the same state 24 h apart is
    1 − |S_d Δ S_{d−1}| / 1440, and |A Δ B| = |A| + |B| − 2|A ∩ B|, so interval overlaps give
    the exact epoch count without materialising minutes. A frame counts as valid (all its
    epochs) when the person has a recorded sleep for that date; minutes of unrecorded days are
    invalid, so a pair has either 100 % or 0 % valid epochs.
    """
    fr = _merge(sleep_frames(intervals))
    tot = fr.group_by("user_id", "day").agg((pl.col("e") - pl.col("s")).sum().alias("tot"))
    prev = fr.select(
        "user_id",
        (pl.col("day") + pl.duration(days=1)).cast(pl.Date).alias("day"),
        pl.col("s").alias("ps"),
        pl.col("e").alias("pe"),
    )
    inter = (
        fr.join(prev, on=["user_id", "day"])
        .with_columns(
            (pl.min_horizontal("e", "pe") - pl.max_horizontal("s", "ps"))
            .clip(lower_bound=0)
            .alias("ov")
        )
        .group_by("user_id", "day")
        .agg(pl.col("ov").sum())
    )
    days = valid_days.select("user_id", pl.col("sleep_date").alias("day")).unique()
    pairs = (
        days.join(
            days.select("user_id", (pl.col("day") + pl.duration(days=1)).cast(pl.Date)),
            on=["user_id", "day"],
        )
        .join(tot, on=["user_id", "day"], how="left")
        .join(
            tot.select(
                "user_id",
                (pl.col("day") + pl.duration(days=1)).cast(pl.Date),
                pl.col("tot").alias("ptot"),
            ),
            on=["user_id", "day"],
            how="left",
        )
        .join(inter, on=["user_id", "day"], how="left")
        .with_columns(
            (
                DAY_MIN
                - pl.col("tot").fill_null(0)
                - pl.col("ptot").fill_null(0)
                + 2 * pl.col("ov").fill_null(0)
            ).alias("agree"),
            pl.lit(1.0).alias("valid_frac"),
        )
        .filter(pl.col("valid_frac") >= SRI_MIN_VALID)
        .select("user_id", pl.col("day").alias("sleep_date"), "agree")
    )
    targets = valid_days.select("user_id", "sleep_date").unique()
    w = window_rows(pairs, 0, SRI_PAIRS - 1, "sleep_date").join(
        targets, on=["user_id", "sleep_date"], how="semi"
    )
    res = w.group_by("user_id", "sleep_date").agg(
        pl.col("agree_src").sum().alias("_agree"), pl.len().cast(pl.Int32).alias("sri_n_pairs")
    )
    ok = pl.col("sri_n_pairs") >= SRI_MIN_PAIRS
    return res.select(
        "user_id",
        "sleep_date",
        pl.when(ok)
        .then(200.0 * pl.col("_agree") / (DAY_MIN * pl.col("sri_n_pairs")) - 100.0)
        .alias("sri"),
        "sri_n_pairs",
    )


def _circ_sd_min(hours: pl.Expr) -> pl.Expr:
    """Circular SD (minutes) of clock times in hours: sqrt(−2 ln R) on the 24-h circle."""
    th = hours * (2 * math.pi / 24)
    r = (th.cos().mean().pow(2) + th.sin().mean().pow(2)).sqrt()
    return (-2 * r.clip(upper_bound=1.0).log()).sqrt() * (24 * 60 / (2 * math.pi))


def timing(nightly: pl.LazyFrame) -> pl.LazyFrame:
    """Bed/wake circular SD over 14 nights and social jet lag over 28 days."""
    v = nightly.select("user_id", "sleep_date", "onset_h", "offset_h", "midpoint_h").filter(
        pl.col("midpoint_h").is_not_null()
    )
    w = window_rows(v, 0, SJL_DAYS - 1, "sleep_date")
    in14 = pl.col("k") < SD_NIGHTS
    free = pl.col("sleep_date_src").dt.weekday() >= 6  # woke on Saturday or Sunday
    agg = w.group_by("user_id", "sleep_date").agg(
        _circ_sd_min(pl.col("onset_h_src").filter(in14)).alias("bedtime_sd_min"),
        _circ_sd_min(pl.col("offset_h_src").filter(in14)).alias("waketime_sd_min"),
        in14.sum().cast(pl.Int32).alias("timing_n_nights"),
        pl.col("midpoint_h_src").filter(free).mean().alias("_msf"),
        pl.col("midpoint_h_src").filter(~free).mean().alias("_msw"),
        free.sum().alias("_nf"),
        (~free).sum().alias("_nw"),
    )
    sd_ok = pl.col("timing_n_nights") >= SD_MIN_NIGHTS
    sjl_ok = (pl.col("_nf") >= SJL_MIN_FREE) & (pl.col("_nw") >= SJL_MIN_WORK)
    return agg.select(
        "user_id",
        "sleep_date",
        pl.when(sd_ok).then(pl.col("bedtime_sd_min")).alias("bedtime_sd_min"),
        pl.when(sd_ok).then(pl.col("waketime_sd_min")).alias("waketime_sd_min"),
        "timing_n_nights",
        pl.when(sjl_ok).then((pl.col("_msf") - pl.col("_msw")).abs()).alias("social_jetlag_h"),
    )


def hourly_activity(steps: pl.LazyFrame) -> pl.LazyFrame:
    """Steps per local clock hour; hours without rows on a day with data are zero."""
    local = pl.col("start_utc").dt.replace_time_zone(None) + pl.duration(
        minutes=pl.col("utc_offset_min")
    )
    dur_h = (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 3600
    st = steps.filter(dur_h.fill_null(0) <= 1.0).with_columns(
        local.dt.date().alias("date"), local.dt.hour().cast(pl.Int32).alias("hour")
    )
    h = st.group_by("user_id", "date", "hour").agg(pl.col("steps").sum().alias("x"))
    days = h.select("user_id", "date").unique()
    hours = pl.LazyFrame({"hour": pl.int_range(0, 24, eager=True).cast(pl.Int32)})
    return (
        days.join(hours, how="cross")
        .join(h, on=["user_id", "date", "hour"], how="left")
        .with_columns(pl.col("x").fill_null(0.0))
    )


def rest_activity(hourly: pl.LazyFrame, targets: pl.LazyFrame) -> pl.LazyFrame:
    """IS, IV, L5, M10, RA over the 7 complete local days before each sleep date.

    Formulas as METRICS.md (Witting 1990, Van Someren 1997/1999); all 7 days must have data,
    otherwise the values are null and ``rar_n_days`` says how many there were.
    """
    daily = hourly.group_by("user_id", "date").agg(pl.col("x").sort_by("hour").alias("xs"))
    t = targets.select("user_id", pl.col("sleep_date").alias("date")).unique()
    offs = pl.LazyFrame({"k": pl.int_range(1, RAR_DAYS + 1, eager=True).cast(pl.Int32)})
    w = (
        t.join(offs, how="cross")
        .with_columns((pl.col("date") - pl.duration(days=pl.col("k"))).alias("d_src"))
        .join(daily.rename({"date": "d_src"}), on=["user_id", "d_src"], how="inner")
        .sort("user_id", "date", "d_src")
        .explode("xs")
        .with_columns(
            pl.int_range(pl.len()).over("user_id", "date").alias("i"),
            (pl.int_range(pl.len()).over("user_id", "date") % 24).alias("h"),
        )
    )
    x = pl.col("xs")
    n = pl.len()
    dev2 = ((x - x.mean()).pow(2)).sum()
    base = w.group_by("user_id", "date").agg(
        (n / 24).cast(pl.Int32).alias("rar_n_days"),
        dev2.alias("_dev2"),
        x.diff().pow(2).sum().alias("_d2"),
        x.mean().alias("_mean"),
        n.alias("_n"),
    )
    prof = w.group_by("user_id", "date", "h").agg(x.mean().alias("p"))
    is_num = (
        prof.join(base.select("user_id", "date", "_mean"), on=["user_id", "date"])
        .group_by("user_id", "date")
        .agg(((pl.col("p") - pl.col("_mean")).pow(2)).sum().alias("_is_num"))
    )
    # Circular running means of the 24-h profile for L5 (5 h) and M10 (10 h).
    ring = pl.LazyFrame({"j": pl.int_range(0, 10, eager=True).cast(pl.Int32)})
    runs = (
        prof.join(ring, how="cross")
        .with_columns(((pl.col("h") - pl.col("j")) % 24).alias("start"))
        .group_by("user_id", "date", "start")
        .agg(
            pl.col("p").filter(pl.col("j") < 5).mean().alias("m5"),
            pl.col("p").mean().alias("m10"),
        )
        .group_by("user_id", "date")
        .agg(pl.col("m5").min().alias("l5"), pl.col("m10").max().alias("m10"))
    )
    ok = pl.col("rar_n_days") >= RAR_DAYS
    pos = pl.col("_dev2") > 0
    out = base.join(is_num, on=["user_id", "date"]).join(runs, on=["user_id", "date"])
    return out.select(
        "user_id",
        pl.col("date").alias("sleep_date"),
        pl.when(ok & pos)
        .then(pl.col("_n") * pl.col("_is_num") / (24 * pl.col("_dev2")))
        .alias("rar_is"),
        pl.when(ok & pos)
        .then(pl.col("_n") * pl.col("_d2") / ((pl.col("_n") - 1) * pl.col("_dev2")))
        .alias("rar_iv"),
        pl.when(ok).then(pl.col("l5")).alias("rar_l5"),
        pl.when(ok).then(pl.col("m10")).alias("rar_m10"),
        pl.when(ok & ((pl.col("m10") + pl.col("l5")) > 0))
        .then((pl.col("m10") - pl.col("l5")) / (pl.col("m10") + pl.col("l5")))
        .alias("rar_ra"),
        pl.col("rar_n_days").fill_null(0),
    )
