"""End to end on synthetic people: gold contracts, date spine, and incremental = full recompute."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tunewell.features.build import (
    build_daily_load,
    build_nightly_features,
    load_window,
    recompute_window,
)
from tunewell.lake.frames import conform
from tunewell.lake.schemas import table
from tunewell.settings import UserSettings, ZonePeriod


def users_of(pop) -> dict[str, UserSettings]:
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


def rr_beats(pop, minutes: int, seed: int = 0) -> pl.DataFrame:
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
    pop, users: dict[str, UserSettings], rr_minutes: int = 0
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


@pytest.fixture(scope="module")
def population():
    from tunewell.synth.people import simulate

    pop = simulate(n_users=2, days=100, seed=11)
    users = users_of(pop)
    return pop, users, silver_from_population(pop, users, rr_minutes=30)


def _since(silver: dict[str, pl.LazyFrame], start) -> dict[str, pl.LazyFrame]:
    t = pl.lit(start).cast(pl.Datetime("us", "UTC"))
    return {k: v.filter(pl.col("start_utc") >= t) for k, v in silver.items()}


def test_nightly_features_contract_and_values(population) -> None:
    pop, users, silver = population
    nf = build_nightly_features(silver, users)
    assert nf.columns == table("nightly_features").names
    assert nf.height == 200 and nf["record_id"].n_unique() == 200
    # the simulated TST is recovered from the stages
    truth = pop.nights.select("user_id", "sleep_date", "tst_min")
    j = nf.join(truth, on=["user_id", "sleep_date"], suffix="_true")
    np.testing.assert_allclose(j["tst_min"], j["tst_min_true"], atol=1.0)
    ok = nf.filter(pl.col("hrv_ok"))
    assert ok.height > 190
    # RR wins where it has >= 6 valid windows; the device's 5-min values fill the rest
    assert (ok["hrv_source"] == "rr").mean() > 0.8
    assert set(ok.filter(pl.col("hrv_source") == "device")["rmssd_window"]) <= {"nightly"}
    rr = ok.filter(pl.col("hrv_source") == "rr").join(
        pop.nights.select("user_id", "sleep_date", pl.col("rmssd_ms").alias("planted")),
        on=["user_id", "sleep_date"],
    )
    assert ((rr["rmssd_ms"] / rr["planted"] - 1).abs().median()) < 0.1
    late = nf.filter(pl.col("sleep_date") >= nf["sleep_date"].min() + timedelta(days=80))
    assert not late["ln_rmssd_calibrating"].any()
    assert late["sri"].is_not_null().all() and late["rar_is"].is_not_null().all()
    assert nf["night_rule"].unique().to_list() == ["noon-split/v1"]


def test_incremental_equals_full(population) -> None:
    _, users, silver = population
    full_n = build_nightly_features(silver, users)
    full_l = build_daily_load(silver, users)
    d_min = full_n["sleep_date"].min()
    start, end = recompute_window([d_min + timedelta(days=75)])
    lo, _ = load_window(start, end)
    part = _since(silver, lo)
    inc_n = build_nightly_features(part, users, start, end)
    exp_n = full_n.filter(pl.col("sleep_date").is_between(start, end))
    assert inc_n.height == exp_n.height > 0
    assert_frame_equal(inc_n, exp_n)
    inc_l = build_daily_load(part, users, start, end)
    exp_l = full_l.filter(pl.col("date").is_between(start, end))
    assert_frame_equal(inc_l, exp_l)
    # too short a lookback changes the answer: the test can fail
    short = build_nightly_features(_since(silver, start - timedelta(days=20)), users, start, end)
    assert not short.equals(exp_n)


def test_missing_nights_are_rows(population) -> None:
    _, users, silver = population
    gap = silver["sleep_episode"].collect()["sleep_date"].unique().sort()[40]
    eps = silver["sleep_episode"].filter(pl.col("sleep_date") != gap)
    nf = build_nightly_features({**silver, "sleep_episode": eps}, users)
    rows = nf.filter(pl.col("sleep_date") == gap)
    assert rows.height == 2
    assert not rows["sleep_ok"].any() and rows["tst_min"].is_null().all()
    assert rows["ln_rmssd_b7"].is_not_null().all()  # baselines still reported from other days


def test_rest_activity_signal_and_sri_wear_end_to_end(population) -> None:
    _, users, silver = population
    nf = build_nightly_features(silver, users)
    late = nf.filter(pl.col("rar_ok"))
    assert late.height > 150 and late["rar_signal"].unique().to_list() == ["steps"]
    no_steps = {k: v for k, v in silver.items() if k != "steps"}
    hr_only = build_nightly_features(no_steps, users).filter(pl.col("rar_ok"))
    # HR days need all 24 local hours, so the 23-hour DST day and travel days drop out.
    assert 140 < hr_only.height <= late.height
    assert hr_only["rar_signal"].unique().to_list() == ["hr"]
    assert hr_only["rar_l5"].min() > 30  # bpm now, not steps/h
    # Wear comes from steps/HR: with only sleep records every day is < 66 % valid.
    no_wear = build_nightly_features(no_steps | {"heart_rate": silver["heart_rate"].head(0)}, users)
    assert no_wear["sri"].is_null().all() and (no_wear["sri_n_pairs"] == 0).all()
    assert nf.filter(pl.col("sri_ok")).height > 150
