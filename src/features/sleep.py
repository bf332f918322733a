"""Sleep per night from the silver stage intervals, so every vendor is measured with one ruler.

Vendors disagree on how they count latency, WASO or awakenings; recomputing from ``sleep_stage``
makes Garmin, Oura and Fitbit nights comparable. Episodes without stages (WHOOP, Fitabase
``sleepDay``) fall back to the vendor's own summary and say so in ``sleep_from_stages``.

Clock times (``onset_h``, ``offset_h``, ``midpoint_h``) are hours after local midnight of the day
*before* ``sleep_date``: 23:30 the evening before is 23.5, 01:00 after midnight is 25.0, a 07:00
wake-up is 31.0. The scale is continuous across midnight, so means and differences need no
wrap-around handling for ordinary nights.
"""

from __future__ import annotations

import polars as pl

from tunewell.lake.merge import clustered
from tunewell.lake.sleep_rules import (
    ASLEEP,
    NIGHT_RULE,
    STAGED,
    flag_main_sleep,
    minutes_between,
    summarise_stages,
)
from tunewell.lake.timezones import local_time

SPLIT_NIGHT_GAP_MIN = 60.0  # DESIGN.md: episodes within 60 min of each other are one
_minutes = minutes_between


def clock_hours(utc: str, offset_min: str, sleep_date: pl.Expr) -> pl.Expr:
    """Local clock time as hours after local midnight of ``sleep_date − 1 day``."""
    ref = (sleep_date - pl.duration(days=1)).cast(pl.Datetime("us"))
    return (local_time(utc, offset_min) - ref).dt.total_microseconds() / 3.6e9


def main_sleep(episodes: pl.LazyFrame) -> pl.LazyFrame:
    """Flag each user's main sleep per sleep date as ``is_main`` (METRICS.md night assignment).

    Re-derived here across all files: the ingest-time flag only saw one file at a time.
    """
    return flag_main_sleep(
        episodes.rename({"is_main_sleep": "__ingest_main"}, strict=False),
        by=("user_id", "sleep_date"),
    ).rename({"is_main_sleep": "is_main", "__ingest_main": "is_main_sleep"}, strict=False)


def _stage_summary(stages: pl.LazyFrame) -> pl.LazyFrame:
    """Per episode: the stage summary of ``lake.sleep_rules``, prefixed ``st_``."""
    summ = summarise_stages(stages, by="episode_id")
    return summ.rename(
        {"tst_min": "st_tst", "awakenings": "st_awak", **{f"{s}_min": f"st_{s}" for s in STAGED}}
    ).drop("waso_min")


def episode_features(episodes: pl.LazyFrame, stages: pl.LazyFrame) -> pl.LazyFrame:
    """One row per episode with stage-derived summary or, lacking stages, the vendor's."""
    eps = main_sleep(episodes)
    summ = _stage_summary(stages)
    j = eps.join(summ, left_on="record_id", right_on="episode_id", how="left")
    has = pl.col("st_tst").is_not_null()
    tib = _minutes("start_utc", "end_utc")
    tst = pl.when(has).then(pl.col("st_tst")).otherwise(pl.col("tst_min"))
    onset = (
        pl.when(has)
        .then(pl.col("onset_utc"))
        .otherwise(
            pl.col("start_utc")
            + pl.duration(microseconds=(pl.col("sol_min") * 60e6).cast(pl.Int64))
        )
    )
    final = pl.when(has).then(pl.col("final_utc")).otherwise(pl.col("end_utc"))
    staged = has & pl.col("staged")
    out = j.with_columns(
        tib.alias("tib_min"),
        tst.alias("tst_min"),
        pl.when(has)
        .then(_minutes("start_utc", "onset_utc"))
        .otherwise(pl.col("sol_min"))
        .alias("sol_min"),
        pl.when(has)
        .then((_minutes("onset_utc", "final_utc") - pl.col("st_tst")).clip(lower_bound=0))
        .otherwise(pl.col("waso_min"))
        .alias("waso_min"),
        pl.when(has).then(pl.col("st_awak")).otherwise(pl.col("awakenings")).alias("awakenings"),
        pl.when(has)
        .then(pl.col("st_tst") / tib * 100)
        .otherwise(pl.col("efficiency_pct").fill_null(pl.col("tst_min") / tib * 100))
        .alias("efficiency_pct"),
        *[pl.when(staged).then(pl.col(f"st_{s}")).alias(f"{s}_min") for s in STAGED],
        has.alias("sleep_from_stages"),
        onset.alias("onset_utc"),
        final.alias("final_utc"),
        pl.when(has)
        .then(pl.col("onset_off"))
        .otherwise(pl.col("utc_offset_min"))
        .alias("onset_off"),
        pl.when(has)
        .then(pl.col("final_off"))
        .otherwise(pl.col("utc_offset_min"))
        .alias("final_off"),
    )
    return out.with_columns(
        *[(pl.col(f"{s}_min") / pl.col("tst_min") * 100).alias(f"{s}_pct") for s in STAGED],
    )


def _midpoint_offset(eps: pl.LazyFrame, stages: pl.LazyFrame) -> pl.LazyFrame:
    """Offset in force at the sleep midpoint: taken from the stage covering it (DST nights)."""
    st = (
        stages.filter(pl.col("episode_id").is_not_null())
        .select(
            pl.col("episode_id").alias("record_id"),
            pl.col("start_utc").alias("mid_utc"),
            pl.col("utc_offset_min").alias("mid_off"),
        )
        .sort("mid_utc")
    )
    return eps.sort("mid_utc").join_asof(
        st, on="mid_utc", by="record_id", strategy="backward", check_sortedness=False
    )


def join_split_nights(
    episodes: pl.LazyFrame, stages: pl.LazyFrame, gap_min: float = SPLIT_NIGHT_GAP_MIN
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Episodes of one source less than ``gap_min`` apart are one sleep (DESIGN.md, merging).

    A night interrupted by 40 min up with a child is one night with a long awakening, not a
    main sleep plus a "nap". The parts become one episode under the first part's id, spanning
    both; its stages keep their times, so the gap counts as wake after sleep onset. Vendor
    summaries (used only for episodes without stages) are added up.
    """
    grp = ["user_id", "source", "__grp"]
    eps = clustered(episodes, ["user_id", "source"], gap_min)
    summed = ("tst_min", "waso_min", "awakenings")
    first = (
        pl.all()
        .exclude(*grp, "end_utc", "sleep_date", *summed)
        .sort_by(pl.col("start_utc"))
        .first()
    )
    joined = (
        eps.group_by(grp)
        .agg(
            first,
            pl.col("end_utc").max(),
            pl.col("sleep_date").sort_by("end_utc").last(),
            *[
                pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c)
                for c in summed
            ],
            pl.len().alias("__parts"),
        )
        .with_columns(
            pl.when(pl.col("__parts") > 1)
            .then(pl.col("tst_min") / _minutes("start_utc", "end_utc") * 100)
            .otherwise(pl.col("efficiency_pct"))
            .alias("efficiency_pct")
        )
        .drop("__grp", "__parts")
        .select(episodes.collect_schema().names())
    )
    remap = eps.select(
        pl.col("record_id").alias("episode_id"),
        pl.col("record_id").sort_by("start_utc").first().over(grp).alias("__night"),
    )
    stages = (
        stages.join(remap, on="episode_id", how="left")
        .with_columns(pl.coalesce("__night", "episode_id").alias("episode_id"))
        .drop("__night")
    )
    return joined, stages


def nightly_sleep(episodes: pl.LazyFrame, stages: pl.LazyFrame) -> pl.LazyFrame:
    """One row per user and sleep date: the main sleep's features plus nap count and minutes."""
    # Materialised step by step: the nights are a few hundred rows, and the one plan over them
    # (each input read by several branches) cost more to optimise than to run.
    episodes, stages = (x.collect().lazy() for x in join_split_nights(episodes, stages))
    ef = episode_features(episodes, stages).collect().lazy()
    naps = (
        ef.filter(~pl.col("is_main"))
        .group_by("user_id", "sleep_date")
        .agg(
            pl.len().cast(pl.Int32).alias("nap_count"),
            pl.col("tst_min").fill_null(pl.col("tib_min")).sum().alias("nap_min"),
        )
    )
    main = ef.filter(pl.col("is_main")).with_columns(
        (pl.col("onset_utc") + (pl.col("final_utc") - pl.col("onset_utc")) / 2).alias("mid_utc")
    )
    main = _midpoint_offset(main, stages).with_columns(
        pl.col("mid_off").fill_null(pl.col("onset_off"))
    )
    sd = pl.col("sleep_date")
    main = main.select(
        "user_id",
        "sleep_date",
        pl.col("record_id").alias("episode_id"),
        pl.col("source").alias("sleep_source"),
        pl.col("start_utc").alias("episode_start_utc"),
        pl.col("end_utc").alias("episode_end_utc"),
        "sleep_from_stages",
        "tib_min",
        "tst_min",
        "sol_min",
        "waso_min",
        pl.col("awakenings").cast(pl.Int32),
        "efficiency_pct",
        *[f"{s}_min" for s in STAGED],
        *[f"{s}_pct" for s in STAGED],
        clock_hours("onset_utc", "onset_off", sd).alias("onset_h"),
        clock_hours("final_utc", "final_off", sd).alias("offset_h"),
        clock_hours("mid_utc", "mid_off", sd).alias("midpoint_h"),
    )
    return (
        main.join(naps, on=["user_id", "sleep_date"], how="full", coalesce=True)
        .with_columns(
            pl.col("nap_count").fill_null(0),
            pl.col("nap_min").fill_null(0.0),
            pl.lit(NIGHT_RULE).alias("night_rule"),
        )
        .sort("user_id", "sleep_date")
    )


def sleep_intervals(episodes: pl.LazyFrame, stages: pl.LazyFrame) -> pl.LazyFrame:
    """Asleep intervals (UTC, with the local offset) for regularity: stages, else the episode."""
    st = stages.filter(pl.col("stage").is_in(ASLEEP) & pl.col("episode_id").is_not_null())
    staged_ids = st.select(pl.col("episode_id").unique().alias("record_id"))
    from_st = st.select("user_id", "start_utc", "end_utc", "utc_offset_min")
    unstaged = episodes.join(staged_ids, on="record_id", how="anti").select(
        "user_id",
        (
            pl.col("start_utc")
            + pl.duration(microseconds=(pl.col("sol_min").fill_null(0) * 60e6).cast(pl.Int64))
        ).alias("start_utc"),
        "end_utc",
        "utc_offset_min",
    )
    return pl.concat([from_st, unstaged], how="vertical_relaxed")
