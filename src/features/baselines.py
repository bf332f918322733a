"""Personal baselines over a daily calendar (METRICS.md "Personal baselines").

Windows are calendar days, not rows: a missing night is a gap that counts against the ≥ 4 / ≥ 14
valid-day rules instead of silently pulling older nights into the window. Windows are built by
joining each day to its day offsets and aggregating in a fixed order, so the value for a day
depends only on the days in its window: recomputing a date range from data loaded with enough
lookback gives bit-identical results to a full recompute (running sums would not).
"""

from __future__ import annotations

import polars as pl

from tunewell.lake.schemas import BASELINE_SERIES, BASELINE_SUFFIXES

ACUTE_DAYS = 7
ACUTE_MIN = 4
CHRONIC_DAYS = 60
CHRONIC_MIN = 14
SWC_FACTOR = 0.5
MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of σ for normal data
# Chronic window: the 60 days before the acute week, i.e. offsets 7..66 days.
LOOKBACK_DAYS = ACUTE_DAYS + CHRONIC_DAYS - 1

SERIES = BASELINE_SERIES
STATS = BASELINE_SUFFIXES


def date_spine(df: pl.LazyFrame, date_col: str = "sleep_date") -> pl.LazyFrame:
    """Every calendar date between a user's first and last row, so gaps become null rows."""
    return (
        df.group_by("user_id")
        .agg(pl.date_ranges(pl.col(date_col).min(), pl.col(date_col).max()).first().alias(date_col))
        .explode(date_col)
    )


def window_rows(values: pl.LazyFrame, lo: int, hi: int, date_col: str) -> pl.LazyFrame:
    """For each (user, date) row of ``values``, the rows of days ``date − hi .. date − lo``.

    Output has ``date_col`` (the target), ``k`` (days back) and the source columns suffixed
    ``_src``; days absent from ``values`` are simply missing.
    """
    offsets = pl.LazyFrame({"k": pl.int_range(lo, hi + 1, eager=True).cast(pl.Int32)})
    targets = values.select("user_id", date_col)
    src = values.rename(
        {c: f"{c}_src" for c in values.collect_schema().names() if c not in ("user_id",)}
    )
    return (
        targets.join(offsets, how="cross")
        .with_columns((pl.col(date_col) - pl.duration(days=pl.col("k"))).alias(f"{date_col}_src"))
        .join(src, on=["user_id", f"{date_col}_src"], how="inner")
        .sort("user_id", date_col, "k")
    )


def baselines(nightly: pl.LazyFrame, series: tuple[str, ...] = SERIES) -> pl.LazyFrame:
    """Acute mean, chronic range, SWC, z-score, CV_7 and calibrating flag for each series.

    The robust z (``_zr``: median and 1.4826·MAD of the same chronic window) keeps one sick week
    or a run of artefact nights in the baseline from inflating σ and hiding the next change.

    ``ln_rmssd`` is only compared with values of the same ``rmssd_window`` (METRICS.md: windows
    are never mixed), so a WHOOP last-slow-wave night does not enter a nightly-RMSSD baseline.
    """
    cols = ["user_id", "sleep_date", *series]
    has_window = "rmssd_window" in nightly.collect_schema().names() and "ln_rmssd" in series
    if has_window:
        cols.append("rmssd_window")
    v = nightly.select(cols)
    w = window_rows(v, 0, LOOKBACK_DAYS, "sleep_date").join(
        v.select("user_id", "sleep_date", *([pl.col("rmssd_window")] if has_window else [])),
        on=["user_id", "sleep_date"],
    )
    acute = pl.col("k") < ACUTE_DAYS
    aggs: list[pl.Expr] = []
    for s in series:
        x = pl.col(f"{s}_src")
        if s == "ln_rmssd" and has_window:
            # A night without HRV is compared against nightly values, the default window.
            target = pl.col("rmssd_window").fill_null("nightly")
            x = pl.when(pl.col("rmssd_window_src") == target).then(x)
        xa, xc = x.filter(acute & x.is_not_null()), x.filter(~acute & x.is_not_null())
        aggs += [
            xa.mean().alias(f"{s}_b7"),
            xa.count().cast(pl.Int32).alias(f"{s}_n7"),
            xa.std(ddof=1).alias(f"_{s}_sd7"),
            xc.mean().alias(f"{s}_mu60"),
            xc.std(ddof=1).alias(f"{s}_sd60"),
            xc.count().cast(pl.Int32).alias(f"{s}_n60"),
            xc.median().alias(f"{s}_med60"),
            (MAD_SCALE * (xc - xc.median()).abs().median()).alias(f"{s}_mad60"),
        ]
    agg = w.group_by("user_id", "sleep_date", maintain_order=True).agg(aggs)
    out = nightly.select("user_id", "sleep_date", *series).join(
        agg, on=["user_id", "sleep_date"], how="left"
    )
    exprs: list[pl.Expr] = []
    for s in series:
        a_ok = pl.col(f"{s}_n7") >= ACUTE_MIN
        c_ok = pl.col(f"{s}_n60") >= CHRONIC_MIN
        exprs += [
            pl.when(a_ok).then(pl.col(f"{s}_b7")).alias(f"{s}_b7"),
            pl.when(c_ok).then(pl.col(f"{s}_mu60")).alias(f"{s}_mu60"),
            pl.when(c_ok).then(pl.col(f"{s}_sd60")).alias(f"{s}_sd60"),
            pl.when(c_ok).then(SWC_FACTOR * pl.col(f"{s}_sd60")).alias(f"{s}_swc"),
            pl.when(c_ok & (pl.col(f"{s}_sd60") > 0))
            .then((pl.col(s) - pl.col(f"{s}_mu60")) / pl.col(f"{s}_sd60"))
            .alias(f"{s}_z"),
            pl.when(c_ok).then(pl.col(f"{s}_med60")).alias(f"{s}_med60"),
            pl.when(c_ok).then(pl.col(f"{s}_mad60")).alias(f"{s}_mad60"),
            pl.when(c_ok & (pl.col(f"{s}_mad60") > 0))
            .then((pl.col(s) - pl.col(f"{s}_med60")) / pl.col(f"{s}_mad60"))
            .alias(f"{s}_zr"),
            pl.when(a_ok & (pl.col(f"{s}_b7") != 0))
            .then(pl.col(f"_{s}_sd7") / pl.col(f"{s}_b7").abs() * 100)
            .alias(f"{s}_cv7"),
            (~c_ok).alias(f"{s}_calibrating"),
            pl.col(f"{s}_n7").fill_null(0),
            pl.col(f"{s}_n60").fill_null(0),
        ]
    return out.with_columns(exprs).select(
        "user_id", "sleep_date", *[f"{s}_{st}" for s in series for st in STATS]
    )
