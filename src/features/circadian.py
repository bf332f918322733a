"""Circadian timing and regularity: SRI, social jet lag, bed/wake SD, IS/IV/L5/M10/RA.

All windows end at the sleep date (the wake-up of that night), so a nightly run can compute them
as soon as the person wakes and the value for a date never depends on later data.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from tunewell.features.baselines import window_rows
from tunewell.lake.timezones import local_date, local_epoch_us, local_hour

DAY_MIN = 1440.0
SRI_PAIRS = 7  # day pairs (d−1, d) for d in the last 7 sleep dates
SRI_MIN_PAIRS = 4
SRI_MIN_VALID = 0.66  # Phillips 2017: pairs with < 66 % valid epochs are excluded
SD_NIGHTS = 14
SD_MIN_NIGHTS = 7
SJL_DAYS = 28
SJL_MIN_FREE, SJL_MIN_WORK = 2, 3
RAR_DAYS = 7  # IS/IV/L5/M10 over the 7 complete local days before the sleep date


EPOCH_US = 60_000_000
# Local time + 12 h puts the noon-to-noon frame of sleep date d on calendar day d, so a frame's
# epochs are simply the minutes of one (shifted) day: day = lm // 1440, minute = lm % 1440.
FRAME_SHIFT_MIN = 720
WEAR_MAX_ROW_MIN = 60.0  # longer step rows (hourly/daily totals) say nothing about a minute
SUMMARY_HR = ("daily_avg", "daily_min", "daily_max")


def _local_us(col: str) -> pl.Expr:
    return local_epoch_us(col)


def wear_intervals(episodes: pl.LazyFrame, steps: pl.LazyFrame, hr: pl.LazyFrame) -> pl.LazyFrame:
    """Intervals with evidence the device was worn: sleep episodes, minute-level steps, HR samples.

    Day totals (long step rows, daily HR summaries) are left out: they do not show that any
    particular minute was observed.
    """
    cols = ["user_id", "start_utc", "end_utc", "utc_offset_min"]
    dur = (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 60
    st = steps.filter(dur.fill_null(0) <= WEAR_MAX_ROW_MIN).select(cols)
    h = hr.filter(~pl.col("context").is_in(SUMMARY_HR).fill_null(False)).select(
        "user_id",
        "start_utc",
        pl.lit(None, pl.Datetime("us", "UTC")).alias("end_utc"),
        "utc_offset_min",
    )
    return pl.concat([episodes.select(cols), st, h], how="vertical_relaxed")


def _epoch_bounds(lf: pl.LazyFrame, rule: str) -> pl.LazyFrame:
    """Frame-minute range [``_f``, ``_l``) each interval row covers (empty ranges dropped).

    ``rule`` "mid": the epochs whose midpoint lies in [start, end), so adjoining intervals
    never share a minute (sleep state). "touch": every minute the row touches, a point sample
    (null end) its own minute (wear evidence).
    """
    s = _local_us("start_utc")
    dur = (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds()
    if rule == "mid":
        a = s - EPOCH_US // 2
        first, last = -((-a) // EPOCH_US), -((-(a + dur)) // EPOCH_US)
    else:
        first = s // EPOCH_US
        last = pl.max_horizontal(-((-(s + dur.fill_null(0))) // EPOCH_US), first + 1)
    return lf.select(
        "user_id",
        (first + FRAME_SHIFT_MIN).cast(pl.Int32).alias("_f"),
        (last + FRAME_SHIFT_MIN).cast(pl.Int32).alias("_l"),
    ).filter(pl.col("_l") > pl.col("_f"))


def _covered(f: np.ndarray, last: np.ndarray, lo: int, n: int) -> np.ndarray:
    """Minutes lo .. lo+n−1 covered by at least one [f, last) range: a difference array, so a
    night-long interval costs two increments instead of 480 exploded rows."""
    d = np.bincount(f - lo, minlength=n + 1) - np.bincount(last - lo, minlength=n + 1)
    return np.cumsum(d[:n]) > 0


def _per_user(df: pl.DataFrame) -> list[tuple[str | None, pl.DataFrame]]:
    """``df`` split by user; a one-user frame (every per-user build) as it is, since
    ``partition_by`` copies a million minute bounds only to return them unchanged."""
    if df.height == 0:
        return []
    ids = df["user_id"]
    if ids.null_count() == 0 and ids.min() == ids.max():
        return [(ids[0], df)]
    return [
        (uid, g)
        for (uid,), g in df.partition_by("user_id", as_dict=True, maintain_order=True).items()
    ]


def sri_pairs(asleep: pl.LazyFrame, wear: pl.LazyFrame) -> pl.LazyFrame:
    """Per frame day d: epochs valid on both d − 1 and d (``n_both``) and how many agree.

    An epoch is valid when it is worn (``wear``) or lies in scored sleep; it is asleep when it
    lies in a sleep interval. Only minutes observed on both days enter the comparison, as in
    Phillips et al. 2017, and the pair is kept if those are >= 66 % of the day's 1440 epochs.
    Per user the minutes form one dense calendar, so validity and state are boolean arrays
    over it and a 24-h lag is a slice, not a join of half a million minutes.
    """
    w = _epoch_bounds(wear, "touch").with_columns(pl.lit(False).alias("_a"))
    a = _epoch_bounds(asleep, "mid").with_columns(pl.lit(True).alias("_a"))
    b = pl.concat([w, a]).collect()
    day = int(DAY_MIN)
    parts = []
    for uid, g in _per_user(b):
        f, last = g["_f"].to_numpy(), g["_l"].to_numpy()
        lo = int(f.min())
        n = int(last.max()) - lo
        if n <= day:
            continue
        valid = _covered(f, last, lo, n)
        sel = g["_a"].to_numpy()
        state = _covered(f[sel], last[sel], lo, n)
        both = valid[day:] & valid[:-day]
        agree = both & (state[day:] == state[:-day])
        d = (np.arange(lo + day, lo + n) // day)[both]
        days, inv = np.unique(d, return_inverse=True)
        parts.append(
            pl.DataFrame(
                {
                    "user_id": uid,
                    "_day": days,
                    "n_both": np.bincount(inv).astype(np.uint32),
                    "agree": np.bincount(inv, weights=agree[both]).astype(np.uint32),
                },
                schema={
                    "user_id": pl.String,
                    "_day": pl.Int64,
                    "n_both": pl.UInt32,
                    "agree": pl.UInt32,
                },
            )
        )
    out = (
        pl.concat(parts)
        if parts
        else pl.DataFrame(
            schema={"user_id": pl.String, "_day": pl.Int64, "n_both": pl.UInt32, "agree": pl.UInt32}
        )
    )
    return (
        out.lazy()
        .filter(pl.col("n_both") >= SRI_MIN_VALID * DAY_MIN)
        .select(
            "user_id",
            pl.col("_day").cast(pl.Int32).cast(pl.Date).alias("sleep_date"),
            "n_both",
            "agree",
        )
    )


def sri(asleep: pl.LazyFrame, wear: pl.LazyFrame, targets: pl.LazyFrame) -> pl.LazyFrame:
    """Sleep Regularity Index (Phillips et al. 2017) over the last 7 day pairs of 1-min epochs.

    SRI = 200 · P(same state 24 h apart) − 100, the probability taken over all epochs valid on
    both days of the valid pairs in the window; null with fewer than 4 valid pairs.
    """
    pairs = sri_pairs(asleep, wear)
    t = targets.select("user_id", "sleep_date").unique()
    w = window_rows(pairs, 0, SRI_PAIRS - 1, "sleep_date").join(
        t, on=["user_id", "sleep_date"], how="semi"
    )
    res = w.group_by("user_id", "sleep_date").agg(
        pl.col("agree_src").sum().alias("_agree"),
        pl.col("n_both_src").sum().alias("_n"),
        pl.len().cast(pl.Int32).alias("sri_n_pairs"),
    )
    ok = pl.col("sri_n_pairs") >= SRI_MIN_PAIRS
    return res.select(
        "user_id",
        "sleep_date",
        pl.when(ok).then(200.0 * pl.col("_agree") / pl.col("_n") - 100.0).alias("sri"),
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
    dur_h = (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 3600
    st = steps.filter(dur_h.fill_null(0) <= 1.0).with_columns(
        local_date().alias("date"), local_hour().cast(pl.Int32).alias("hour")
    )
    h = st.group_by("user_id", "date", "hour").agg(pl.col("steps").sum().alias("x"))
    days = h.select("user_id", "date").unique()
    hours = pl.LazyFrame({"hour": pl.int_range(0, 24, eager=True).cast(pl.Int32)})
    return (
        days.join(hours, how="cross")
        .join(h, on=["user_id", "date", "hour"], how="left")
        .with_columns(pl.col("x").fill_null(0.0))
    )


def hourly_hr(hr: pl.LazyFrame) -> pl.LazyFrame:
    """Mean HR per local clock hour, for days where every hour has samples.

    Unlike steps, an hour without HR is unobserved, not zero; filling it would invent a rhythm,
    so only complete days enter IS/IV/L5/M10 (which assume p = 24 values per day).
    """
    h = (
        hr.filter(~pl.col("context").is_in(SUMMARY_HR).fill_null(False))
        .group_by(
            "user_id",
            local_date().alias("date"),
            local_hour().cast(pl.Int32).alias("hour"),
        )
        .agg(pl.col("bpm").mean().alias("x"))
    )
    return h.filter(pl.len().over("user_id", "date") == 24)


def rest_activity_any(steps: pl.LazyFrame, hr: pl.LazyFrame, targets: pl.LazyFrame) -> pl.LazyFrame:
    """IS/IV/L5/M10/RA from hourly steps, else (window without 7 days of steps) hourly mean HR.

    METRICS.md allows either signal; steps win because they are the actigraphy-like measure the
    references used. ``rar_signal`` names the one used, since L5/M10 are in steps/h or bpm.
    """
    keys = ["user_id", "sleep_date"]
    by_steps = rest_activity(hourly_activity(steps).collect().lazy(), targets).collect()
    need = (
        targets.select(keys)
        .unique()
        .join(by_steps.lazy().filter(pl.col("rar_n_days") >= RAR_DAYS), on=keys, how="anti")
    )
    # HR only fills the dates steps could not: aggregate just the days those windows read
    # (a cheap date-range filter first, then the exact day set), not a whole year of samples.
    need_df = need.collect()
    offs = pl.LazyFrame({"k": pl.int_range(1, RAR_DAYS + 1, eager=True).cast(pl.Int32)})
    days = (
        need_df.lazy()
        .join(offs, how="cross")
        .select("user_id", (pl.col("sleep_date") - pl.duration(days=pl.col("k"))).alias("date"))
        .unique()
        .collect()
    )
    if days.height:
        lo, hi = days["date"].min(), days["date"].max()
        hr = hr.filter(local_date().is_between(lo, hi))
    hourly = hourly_hr(hr).join(days.lazy(), on=["user_id", "date"], how="semi")
    by_hr = rest_activity(hourly, need_df.lazy()).collect()
    use_hr = by_hr.filter(pl.col("rar_n_days") >= RAR_DAYS)
    rest = by_steps.join(use_hr, on=keys, how="anti")
    return pl.concat(
        [
            rest.with_columns(
                pl.when(pl.col("rar_n_days") >= RAR_DAYS).then(pl.lit("steps")).alias("rar_signal")
            ),
            use_hr.with_columns(pl.lit("hr").alias("rar_signal")),
        ],
        how="vertical_relaxed",
    ).lazy()


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
