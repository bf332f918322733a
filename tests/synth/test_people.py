"""The simulated ground truth: deterministic, physiologically shaped, DST and travel inside."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from tunewell.synth.people import DEFAULT_START, simulate


@pytest.fixture(scope="module")
def pop():
    return simulate()


def test_same_seed_same_frames_other_seed_differs(pop):
    again = simulate()
    for name in ("nights", "stages", "hrv5", "minutes", "workouts"):
        assert getattr(pop, name).equals(getattr(again, name)), name
    other = simulate(seed=8)
    assert not other.nights.equals(pop.nights)


def test_person_independent_of_population_size(pop):
    one = simulate(n_users=1)
    assert one.nights.equals(pop.nights.filter(pl.col("user_id") == "p001"))


def test_default_range_crosses_european_dst():
    last = DEFAULT_START.toordinal() + 34
    assert DEFAULT_START < date(2026, 3, 29) <= date.fromordinal(last)


def test_stages_contiguous_and_fill_the_episode(pop):
    st = pop.stages.sort("user_id", "start_utc")
    per = st.group_by("user_id", "sleep_date").agg(
        pl.col("start_utc").first().alias("first"),
        pl.col("end_utc").last().alias("last"),
        ((pl.col("start_utc").shift(-1) - pl.col("end_utc")).drop_nulls().abs().max()).alias("gap"),
        (pl.col("end_utc") > pl.col("start_utc")).all().alias("positive"),
    )
    j = per.join(pop.nights, on=["user_id", "sleep_date"])
    assert len(j) == len(pop.nights)
    assert (j["first"] == j["bed_utc"]).all()
    assert (j["last"] == j["out_utc"]).all()
    assert j["gap"].dt.total_seconds().max() == 0
    assert j["positive"].all()


def test_sleep_architecture_deep_early_rem_late(pop):
    st = pop.stages.join(
        pop.nights.select("user_id", "sleep_date", "onset_utc", "wake_utc"),
        on=["user_id", "sleep_date"],
    )
    st = st.with_columns(
        (
            (pl.col("start_utc") - pl.col("onset_utc")) / (pl.col("wake_utc") - pl.col("onset_utc"))
        ).alias("frac"),
        (pl.col("end_utc") - pl.col("start_utc")).dt.total_minutes().alias("min"),
    )
    first_half = st.filter(pl.col("frac") < 0.5)
    second_half = st.filter(pl.col("frac") >= 0.5)

    def total(df: pl.DataFrame, stage: str) -> float:
        return float(df.filter(pl.col("stage") == stage)["min"].sum())

    assert total(first_half, "deep") > 2 * total(second_half, "deep")
    assert total(second_half, "rem") > total(first_half, "rem")
    sol = (pop.nights["onset_utc"] - pop.nights["bed_utc"]).dt.total_minutes()
    assert sol.min() >= 5 and sol.max() <= 25


def test_planted_effects_in_truth(pop):
    n = pop.nights.with_columns(pl.col("rmssd_ms").log().alias("ln"))
    hard = n.filter(pl.col("hard_day_before"))["ln"].mean()
    rest = n.filter(~pl.col("hard_day_before"))["ln"].mean()
    assert rest - hard > 0.08
    assert 0.05 < n["is_short"].mean() < 0.2
    assert (n.filter(pl.col("is_short"))["tst_min"] < 360).all()


def test_minutes_quiet_in_bed_and_busy_in_workouts(pop):
    m = pop.minutes.filter(pl.col("user_id") == "p002")
    st = pop.stages.filter((pl.col("user_id") == "p002") & (pl.col("stage") == "deep"))
    t = m["start_utc"].dt.epoch("s").to_numpy()
    s = st["start_utc"].dt.epoch("s").to_numpy()
    e = st["end_utc"].dt.epoch("s").to_numpy()
    j = np.searchsorted(s, t + 30, side="right") - 1
    deep = (j >= 0) & (t + 30 < e[np.clip(j, 0, None)])
    assert m["steps"].to_numpy()[deep].sum() == 0
    assert m["hr"].to_numpy()[deep].mean() < m["hr"].to_numpy()[~deep].mean() - 10
    daily = m["steps"].sum() / 36
    assert 4000 < daily < 16000


def test_travel_week_recorded(pop):
    hist = pop.tz_history["p001"]
    assert [tz for _, tz in hist] == ["America/New_York", "Europe/Berlin"]
    ny = pop.nights.filter((pl.col("user_id") == "p001") & (pl.col("tz") == "America/New_York"))
    assert 5 <= len(ny) <= 7


def test_behaviours_add_a_journal_and_move_only_the_nights_after_alcohol():
    import polars as pl

    from tunewell.synth.people import ALCOHOL_LN, JOURNAL_ITEMS, simulate

    plain = simulate(1, 60, seed=4)
    tagged = simulate(1, 60, seed=4, behaviours=True)
    assert plain.journal.is_empty()
    assert tagged.journal.height == 60 * len(JOURNAL_ITEMS)
    assert tagged.stages.equals(plain.stages) and tagged.workouts.equals(plain.workouts)
    alcohol = tagged.journal.filter((pl.col("item") == "alcohol") & pl.col("yes"))["date"]
    j = plain.nights.select("sleep_date", ln0=pl.col("rmssd_ms").log()).join(
        tagged.nights.select("sleep_date", ln1=pl.col("rmssd_ms").log()), on="sleep_date"
    )
    after = (pl.col("sleep_date") - pl.duration(days=1)).is_in(alcohol.implode())
    moved = j.filter(after)
    assert moved.height >= 5
    # nightly RMSSD is a median of noisy 5-min values: close to ALCOHOL_LN, not exact
    assert (moved["ln1"] - moved["ln0"]).mean() == pytest.approx(ALCOHOL_LN, abs=0.03)
    assert (j.filter(~after)["ln1"] - j.filter(~after)["ln0"]).abs().max() < 1e-9
