"""HRV and heart rate over the main sleep: RR cleaning, 5-minute windows, nightly values.

RR-derived values win over the device's own numbers because they are computed the same way for
every source; device values (``hrv`` table) fill nights without beats and keep their label, so an
Apple SDNN or a WHOOP last-slow-wave RMSSD never lands in a baseline of nightly RMSSD.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tunewell.features.intervals import in_order, within
from tunewell.features.vitals import by_night

RR_MIN_MS, RR_MAX_MS = 300.0, 2000.0
MAX_REL_CHANGE = 0.20  # Malik criterion against the previous *kept* beat
SEGMENT_GAP_S = 5.0  # a recording break: the next beat starts a new reference
WINDOW = "5m"
WINDOW_MS = 300_000.0
MIN_COVERAGE = 0.60  # METRICS.md nightly RMSSD: window counts if >= 60 % covered by kept beats
MIN_WINDOWS = 6  # half an hour of valid windows before a nightly value is trusted
HR_MIN_COVERAGE = 0.5  # share of the episode's 5-min bins with HR samples for hr_ok


def clean_mask(rr_ms: np.ndarray, new_segment: np.ndarray) -> np.ndarray:
    """Keep-mask of the Malik/range cleaning (METRICS.md RR cleaning).

    The 20 % rule compares with the previous *kept* beat, so whether a beat survives depends on
    every decision before it. Wherever the previous beat was kept, that reference is simply the
    previous raw beat, so one vectorised pass is exact for almost every beat; only the stretch
    after each rejected beat (until a beat is kept again) needs the sequential rule. That keeps
    the Python loop to the artefacts instead of ~650k beats per person-year. ``new_segment``
    marks the first beat after a user change or a recording break, where the reference restarts.
    """
    rr = np.asarray(rr_ms, dtype=float)
    seg = np.asarray(new_segment, dtype=bool)
    n = rr.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    in_range = (rr >= RR_MIN_MS) & (rr <= RR_MAX_MS)
    prev = np.empty(n)
    prev[0] = np.nan
    prev[1:] = rr[:-1]
    with np.errstate(invalid="ignore"):
        close = np.abs(rr - prev) <= MAX_REL_CHANGE * prev
    keep = in_range & (seg | close)
    keep[0] = in_range[0]
    done = 0  # beats before ``done`` are final
    for j in np.flatnonzero(~keep).tolist():
        if j < done:
            continue
        # Beat j is rejected for good (its reference, beat j−1, was kept or j starts a segment).
        ref = -1.0 if (j == 0 or seg[j] or not keep[j - 1]) else float(rr[j - 1])
        k = j + 1
        while k < n:
            if seg[k]:
                ref = -1.0
            r = float(rr[k])
            ok = bool(in_range[k]) and (ref < 0 or abs(r - ref) <= MAX_REL_CHANGE * ref)
            keep[k] = ok
            k += 1
            if ok:
                break
            # out-of-range beats leave the reference where it was
        done = k
    return keep


def clean_rr(rr: pl.LazyFrame) -> pl.DataFrame:
    """Beats sorted per user with a ``kept`` flag."""
    df = in_order(
        rr.select("user_id", "start_utc", "rr_ms", "utc_offset_min").collect(),
        ["user_id", "start_utc"],
    )
    gap = (pl.col("start_utc").diff().dt.total_microseconds() / 1e6) > SEGMENT_GAP_S
    seg = df.select(
        (pl.col("user_id") != pl.col("user_id").shift(1)).fill_null(True) | gap.fill_null(True)
    ).to_series()
    keep = clean_mask(df["rr_ms"].to_numpy(), seg.to_numpy())
    return df.with_columns(pl.Series("kept", keep))


def time_domain(kept: pl.LazyFrame, by: list[str], *, presorted: bool = False) -> pl.LazyFrame:
    """RMSSD, SDNN, mean HR, pNN50 per group of kept beats (Task Force 1996 formulas).

    Successive differences are taken between consecutive kept beats within the group;
    ``presorted`` says ``kept`` is already in (``by``, start) order.
    """
    # Sorted by group, a group's beats are contiguous: the plain diff masked at group starts is
    # the per-group diff without a hash partition of every beat.
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in by]).fill_null(False)
    d = pl.when(same).then(pl.col("rr_ms").diff())
    ordered = kept if presorted else kept.sort([*by, "start_utc"])
    return (
        ordered.with_columns(d.alias("_d"))
        .group_by(by)
        .agg(
            pl.len().alias("n_beats"),
            pl.col("rr_ms").sum().alias("rr_sum_ms"),
            (pl.col("_d").pow(2).mean().sqrt()).alias("rmssd_ms"),
            pl.col("rr_ms").std(ddof=1).alias("sdnn_ms"),
            (60000.0 / pl.col("rr_ms").mean()).alias("mean_hr"),
            (100.0 * (pl.col("_d").abs() > 50).sum() / pl.col("_d").count()).alias("pnn50"),
        )
    )


def _assign_episode(samples: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Attach the main-sleep episode each sample falls in (samples outside are dropped)."""
    eps = main.select("user_id", "sleep_date", "episode_start_utc", "episode_end_utc")
    return within(samples, eps, at="start_utc", start="episode_start_utc", end="episode_end_utc")


def windows_5min(beats: pl.DataFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """5-min clock-aligned windows of kept beats inside each main sleep, with coverage."""
    return _windows(_assign_episode(beats.lazy(), main).collect())


def _windows(assigned: pl.DataFrame) -> pl.LazyFrame:
    by = ["user_id", "sleep_date", "window_start"]
    b = in_order(
        assigned.filter(pl.col("kept")).with_columns(
            pl.col("start_utc").dt.truncate(WINDOW).alias("window_start")
        ),
        [*by, "start_utc"],
    )
    td = time_domain(b.lazy(), by, presorted=True)
    return td.with_columns((pl.col("rr_sum_ms") / WINDOW_MS >= MIN_COVERAGE).alias("window_ok"))


def nightly_rr(rr: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Nightly RMSSD = median of valid 5-min RMSSD over the main sleep; kept fraction."""
    # The beats are placed in their nights once; both the kept fraction and the windows use it.
    assigned = _assign_episode(clean_rr(rr).lazy(), main).collect()
    kept_frac = (
        assigned.lazy()
        .group_by("user_id", "sleep_date")
        .agg(pl.col("kept").mean().alias("rr_kept_fraction"))
    )
    w = _windows(assigned)
    ok = pl.col("window_ok")
    night = w.group_by("user_id", "sleep_date").agg(
        pl.col("rmssd_ms").filter(ok).median().alias("rr_rmssd"),
        pl.col("sdnn_ms").filter(ok).median().alias("rr_sdnn"),
        ok.sum().cast(pl.Int32).alias("rr_windows"),
    )
    return night.join(kept_frac, on=["user_id", "sleep_date"], how="full", coalesce=True)


def nightly_device(hrv: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Device HRV per main sleep: best available window per metric, with its label.

    Preference for RMSSD: nightly > median of device 5-min values > first_4h > last_sws > spot
    inside the episode; SDNN likewise. Values are never averaged across windows.
    """
    pref = {"nightly": 0, "5min": 1, "first_4h": 2, "last_sws": 3, "spot": 4}
    h = _assign_episode(hrv, main)
    per = (
        h.group_by("user_id", "sleep_date", "metric", "window")
        .agg(pl.col("value_ms").median().alias("v"), pl.len().alias("n"))
        .with_columns(
            pl.col("window").replace_strict(pref, default=9, return_dtype=pl.Int32).alias("_p"),
            pl.when(pl.col("window") == "5min")
            .then(pl.lit("nightly"))
            .otherwise(pl.col("window"))
            .alias("label"),
        )
    )
    best = (
        per.sort("_p")
        .group_by("user_id", "sleep_date", "metric")
        .agg(pl.col("v").first(), pl.col("label").first(), pl.col("n").first())
    )
    rm = best.filter(pl.col("metric") == "rmssd").select(
        "user_id",
        "sleep_date",
        pl.col("v").alias("dev_rmssd"),
        pl.col("label").alias("dev_rmssd_window"),
        pl.col("n").alias("dev_rmssd_n"),
    )
    sd = best.filter(pl.col("metric") == "sdnn").select(
        "user_id",
        "sleep_date",
        pl.col("v").alias("dev_sdnn"),
        pl.col("label").alias("dev_sdnn_window"),
    )
    return rm.join(sd, on=["user_id", "sleep_date"], how="full", coalesce=True)


def nightly_hrv(rr: pl.LazyFrame, hrv: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Combine RR-derived and device HRV into labelled nightly columns."""
    keys = ["user_id", "sleep_date"]
    j = (
        main.select(keys)
        .join(nightly_rr(rr, main), on=keys, how="left")
        .join(nightly_device(hrv, main), on=keys, how="left")
    )
    rr_ok = pl.col("rr_windows").fill_null(0) >= MIN_WINDOWS
    has_rr = pl.col("rr_windows").fill_null(0) > 0
    rmssd = pl.when(rr_ok).then(pl.col("rr_rmssd")).otherwise(pl.col("dev_rmssd"))
    return j.select(
        *keys,
        rmssd.alias("rmssd_ms"),
        rmssd.log().alias("ln_rmssd"),
        pl.when(rr_ok)
        .then(pl.lit("nightly"))
        .otherwise(pl.col("dev_rmssd_window"))
        .alias("rmssd_window"),
        pl.when(rr_ok)
        .then(pl.lit("rr"))
        .when(pl.col("dev_rmssd").is_not_null())
        .then(pl.lit("device"))
        .alias("hrv_source"),
        pl.when(rr_ok).then(pl.col("rr_sdnn")).otherwise(pl.col("dev_sdnn")).alias("sdnn_ms"),
        pl.when(rr_ok)
        .then(pl.lit("nightly"))
        .otherwise(pl.col("dev_sdnn_window"))
        .alias("sdnn_window"),
        pl.when(has_rr)
        .then(pl.col("rr_windows"))
        .otherwise(pl.lit(0, pl.Int32))
        .alias("hrv_n_windows"),
        "rr_kept_fraction",
        (rr_ok | pl.col("dev_rmssd").is_not_null()).alias("hrv_ok"),
    )


def nightly_hr(hr: pl.LazyFrame, vitals: pl.LazyFrame, main: pl.LazyFrame) -> pl.LazyFrame:
    """Sleeping HR (mean, lowest 5-min mean) over the main sleep and resting HR.

    Resting HR is the vendor's ``resting_hr`` for the sleep date; without one, the lowest 30-min
    mean during the main sleep stands in (``resting_hr_source`` says which), because overnight
    is the only time of day reliably at rest.
    """
    keys = ["user_id", "sleep_date"]
    samples = hr.filter(pl.col("context").is_in(["sample", "sleep"]) | pl.col("context").is_null())
    s = _assign_episode(
        in_order(
            samples.select("user_id", "start_utc", "bpm").collect(), ["user_id", "start_utc"]
        ).lazy(),
        main,
    )
    b5 = (
        s.group_by(*keys, pl.col("start_utc").dt.truncate("5m").alias("b"))
        .agg(pl.col("bpm").mean().alias("m"))
        .group_by(keys)
        .agg(pl.col("m").min().alias("hr_sleep_min"), pl.len().alias("_bins"))
    )
    b30 = (
        s.group_by(*keys, pl.col("start_utc").dt.truncate("30m").alias("b"))
        .agg(pl.col("bpm").mean().alias("m"))
        .group_by(keys)
        .agg(pl.col("m").min().alias("_rest_sleep"))
    )
    mean = s.group_by(keys).agg(pl.col("bpm").mean().alias("hr_sleep_mean"))
    # Which night a vendor's resting HR belongs to is the vitals rule (features.vitals.by_night).
    vit = (
        by_night(vitals.filter(pl.col("metric") == "resting_hr"), main)
        .group_by(keys)
        .agg(pl.col("value").mean().alias("_rest_vendor"))
    )
    ep_bins = (
        (pl.col("episode_end_utc") - pl.col("episode_start_utc")).dt.total_seconds() / 300.0
    ).ceil()
    j = (
        main.select(*keys, ep_bins.alias("_ep_bins"))
        .join(mean, on=keys, how="left")
        .join(b5, on=keys, how="left")
        .join(b30, on=keys, how="left")
        .join(vit, on=keys, how="left")
    )
    hr_ok = pl.col("_bins").fill_null(0) >= HR_MIN_COVERAGE * pl.col("_ep_bins")
    return j.select(
        *keys,
        pl.when(hr_ok).then(pl.col("hr_sleep_mean")).alias("hr_sleep_mean"),
        pl.when(hr_ok).then(pl.col("hr_sleep_min")).alias("hr_sleep_min"),
        hr_ok.alias("hr_ok"),
        pl.coalesce(pl.col("_rest_vendor"), pl.when(hr_ok).then(pl.col("_rest_sleep"))).alias(
            "resting_hr"
        ),
        pl.when(pl.col("_rest_vendor").is_not_null())
        .then(pl.lit("vendor"))
        .when(hr_ok & pl.col("_rest_sleep").is_not_null())
        .then(pl.lit("sleep_lowest_30min"))
        .alias("resting_hr_source"),
    )
