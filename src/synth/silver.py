"""Silver tables for simulated people, as ingest would write them, without the vendor files.

For feature tests and the features benchmark, which need many person-years of silver rows and
would otherwise spend their time writing and reading vendor exports. The readers' own tests go
through the vendor formats written by the other modules here.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from tunewell.lake.frames import conform
from tunewell.settings import UserSettings, ZonePeriod
from tunewell.synth.people import Population


def users_of(pop: Population) -> dict[str, UserSettings]:
    return {
        p.user_id: UserSettings(
            p.user_id,
            tz=p.tz_home,
            sex=p.sex,
            hr_max=p.hr_max,
            tz_history=tuple(ZonePeriod(d, tz) for d, tz in pop.tz_history[p.user_id]),
        )
        for p in pop.people
    }


def rr_beats(pop: Population, minutes: int, seed: int = 0) -> pl.DataFrame:
    """Beats for the first ``minutes`` of each night's sleep, RMSSD near the planted value."""
    rng = np.random.default_rng(seed)
    n = pop.nights
    per = int(minutes * 60)
    k = n.height * per
    rr = 1000 + rng.normal(0, 1, k) * np.repeat(n["rmssd_ms"].to_numpy() / np.sqrt(2), per)
    rr = np.clip(rr, 400, 1800)
    night_idx = np.repeat(np.arange(n.height), per)
    offs = np.cumsum(rr.reshape(n.height, per), axis=1).ravel()
    t0 = n["onset_utc"].to_numpy()[night_idx]
    return pl.DataFrame(
        {
            "user_id": n["user_id"].to_numpy()[night_idx],
            "start_utc": t0 + offs.astype("timedelta64[ms]"),
            "rr_ms": rr,
        }
    ).with_columns(pl.col("start_utc").dt.replace_time_zone("UTC"))


def vitals_rows(nights: pl.DataFrame) -> pl.DataFrame:
    """The planted vitals as devices report them: respiration samples every 30 min of the sleep
    (plus a daytime one that must not count), one absolute skin temperature and one SpO2 value
    spanning each night."""
    resp = (
        nights.select("onset_utc", "resp_rate", k=pl.int_ranges(0, 8))
        .explode("k")
        .select(
            (pl.col("onset_utc") + pl.duration(minutes=30 * pl.col("k"))).alias("start_utc"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("end_utc"),
            pl.lit("respiration_rate").alias("metric"),
            pl.col("resp_rate").alias("value"),
        )
    )
    day = nights.select(
        (pl.col("wake_utc") + pl.duration(hours=6)).alias("start_utc"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("end_utc"),
        pl.lit("respiration_rate").alias("metric"),
        (pl.col("resp_rate") + 5).alias("value"),
    )
    whole = [
        nights.select(
            pl.col("onset_utc").alias("start_utc"),
            pl.col("wake_utc").alias("end_utc"),
            pl.lit(m).alias("metric"),
            pl.col(c).alias("value"),
        )
        for m, c in (("skin_temp", "skin_temp_c"), ("spo2", "spo2_pct"))
    ]
    return pl.concat([resp, day, *whole]).with_columns(
        pl.when(pl.col("metric") == "spo2").then(pl.lit("%")).otherwise(pl.lit("")).alias("unit")
    )


def silver_from_population(
    pop: Population, users: dict[str, UserSettings], rr_minutes: int = 0
) -> dict[str, pl.LazyFrame]:
    """Silver tables as ingest would write them for the simulated people."""
    out: dict[str, list[pl.DataFrame]] = {}

    def add(name: str, df: pl.DataFrame, u: UserSettings) -> pl.DataFrame:
        c = conform(df, name, user=u, source="synth", source_file="synth")
        out.setdefault(name, []).append(c)
        return c

    rr_all = rr_beats(pop, rr_minutes) if rr_minutes else None
    for uid, u in users.items():
        nights = pop.nights.filter(pl.col("user_id") == uid)
        ep = add(
            "sleep_episode",
            nights.select(
                pl.col("bed_utc").alias("start_utc"),
                pl.col("out_utc").alias("end_utc"),
                "sleep_date",
            ),
            u,
        )
        ids = ep.select("sleep_date", pl.col("record_id").alias("episode_id"))
        st = pop.stages.filter(pl.col("user_id") == uid).join(ids, on="sleep_date")
        add("sleep_stage", st.select("start_utc", "end_utc", "stage", "episode_id"), u)
        add(
            "hrv",
            pop.hrv5.filter(pl.col("user_id") == uid).select(
                "start_utc",
                pl.lit("rmssd").alias("metric"),
                pl.lit("5min").alias("window"),
                pl.col("rmssd_ms").alias("value_ms"),
            ),
            u,
        )
        m = pop.minutes.filter(pl.col("user_id") == uid)
        add(
            "steps",
            m.select(
                "start_utc",
                (pl.col("start_utc") + timedelta(minutes=1)).alias("end_utc"),
                pl.col("steps").cast(pl.Float64),
            ),
            u,
        )
        add(
            "heart_rate",
            m.select(
                "start_utc",
                pl.col("hr").cast(pl.Float64).alias("bpm"),
                pl.lit("sample").alias("context"),
            ),
            u,
        )
        w = pop.workouts.filter(pl.col("user_id") == uid)
        add(
            "workout",
            w.select(
                "start_utc",
                "end_utc",
                "activity",
                "avg_hr",
                "max_hr",
                pl.col("rpe").cast(pl.Float64),
                ((pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 60).alias(
                    "duration_min"
                ),
            ),
            u,
        )
        add("vitals", vitals_rows(nights), u)
        if rr_all is not None:
            add("rr_interval", rr_all.filter(pl.col("user_id") == uid).drop("user_id"), u)
    return {k: pl.concat(v).lazy() for k, v in out.items()}
