"""Behaviour associations: a planted journal effect is recovered through the WHOOP export, a tag
with no planted effect shows nothing, and the display rules (≥ 5 nights a side, CI excluding 0)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tests.coach.gold import WEEK, steady_person
from tunewell.coach import insights as ins
from tunewell.coach.week import IsoWeek, load_person
from tunewell.features.refresh import refresh_gold
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.frames import empty
from tunewell.settings import Settings, UserSettings
from tunewell.synth.people import ALCOHOL_LN, ALCOHOL_RHR, HARD_DAY_LN, simulate
from tunewell.synth.whoop import write_whoop

USER = "p001"
ALCOHOL = "did_you_have_any_alcoholic_drinks"
CAFFEINE = "did_you_have_any_caffeine"
SCREEN = "did_you_view_a_phone_or_other_screen_device_while_in_bed"


@pytest.fixture(scope="module")
def whoop_person(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whoop")
    pop = simulate(1, 70, seed=11, behaviours=True)
    paths = write_whoop(pop, USER, tmp / "in")
    s = Settings(lake=tmp / "lake", users={USER: UserSettings(USER, tz="Europe/Berlin")})
    rep = ingest_paths(paths, USER, s)
    assert all(f.status == "ingested" for f in rep.files)
    refresh_gold(s)
    return pop, load_person(s.lake, USER, IsoWeek.of(pop.nights["sleep_date"].max()))


@pytest.mark.slow
def test_planted_alcohol_effect_is_recovered_from_the_whoop_journal(whoop_person):
    pop, d = whoop_person
    shown = {(i.tag, i.outcome): i for i in ins.insights(d)}
    ln = shown[(ALCOHOL, "ln_rmssd")]
    assert ln.ci_low < ALCOHOL_LN < ln.ci_high and ln.ci_high < 0
    assert ln.n_yes >= ins.MIN_NIGHTS and ln.n_no >= ins.MIN_NIGHTS
    # the yes count is the simulated journal's, one day earlier than the night it moved
    truth = pop.journal.filter((pl.col("item") == "alcohol") & pl.col("yes"))
    assert ln.n_yes <= truth.height
    rhr = shown[(ALCOHOL, "resting_hr")]
    assert rhr.ci_low < ALCOHOL_RHR < rhr.ci_high
    assert ln.text.startswith(f"On the {ln.n_yes} nights after alcohol your lnRMSSD was")
    assert "association" in ln.text and "cause" in ln.text
    # hard training days were planted by the simulator too (−0.15 ln next night)
    hard = shown[("hard_training_day", "ln_rmssd")]
    assert hard.ci_low < HARD_DAY_LN < hard.ci_high


@pytest.mark.slow
def test_tags_without_a_planted_effect_show_nothing(whoop_person):
    _, d = whoop_person
    everything = ins.insights(d, all_rows=True)
    nulls = [i for i in everything if i.tag in (CAFFEINE, SCREEN)]
    assert {i.tag for i in nulls} == {CAFFEINE, SCREEN}  # they were estimated …
    assert all(not i.shown and i.ci_low < 0 < i.ci_high for i in nulls)  # … and not shown
    assert not [i for i in ins.insights(d) if i.tag in (CAFFEINE, SCREEN)]


def _journal(d, yes_days: set, n_days: int = 60):
    rows = []
    for k in range(n_days):
        day = WEEK.sunday - timedelta(days=k + 1)
        rows.append({"date": day, "item": "late_meal", "value": 1.0 if day in yes_days else 0.0})
    base = empty("self_report")
    rep = pl.DataFrame(rows).with_columns(
        pl.lit(d.user_id).alias("user_id"), pl.lit("whoop").alias("source")
    )
    return replace(d, reports=pl.concat([base, rep], how="diagonal_relaxed").select(base.columns))


def _shift_next_nights(d, days: set, delta: float):
    nights = d.nights.with_columns(
        pl.when((pl.col("sleep_date") - pl.duration(days=1)).is_in(list(days)))
        .then(pl.col("ln_rmssd") + delta)
        .otherwise(pl.col("ln_rmssd"))
        .alias("ln_rmssd")
    )
    return replace(d, nights=nights)


def test_display_needs_five_nights_each_side():
    d = steady_person()
    four = {WEEK.sunday - timedelta(days=k) for k in (3, 10, 17, 24)}
    d4 = _shift_next_nights(_journal(d, four), four, -0.3)
    got = ins.insights(d4, all_rows=True)
    meal = next(i for i in got if i.tag == "late_meal" and i.outcome == "ln_rmssd")
    assert meal.n_yes == 4 and meal.ci_high < 0 and not meal.shown
    five = four | {WEEK.sunday - timedelta(days=31)}
    d5 = _shift_next_nights(_journal(d, five), five, -0.3)
    meal = next(i for i in ins.insights(d5) if i.tag == "late_meal" and i.outcome == "ln_rmssd")
    assert meal.n_yes == 5 and meal.shown
    assert meal.diff == pytest.approx(-0.3, abs=0.03)


def test_bootstrap_is_seeded_and_uses_enough_resamples():
    rng = np.random.default_rng(1)
    yes, no = rng.normal(-0.2, 0.1, 10), rng.normal(0, 0.1, 30)
    a = ins.bootstrap_diff(yes, no, seed=3)
    assert a == ins.bootstrap_diff(yes, no, seed=3)
    assert a[1] < a[0] < a[2]
    assert ins.RESAMPLES >= 2000


def test_scaled_answers_are_not_tags():
    d = steady_person()
    rep = pl.DataFrame(
        {"date": [WEEK.monday - timedelta(days=k) for k in range(20)], "item": ["fatigue"] * 20}
    ).with_columns(
        value=pl.Series([float(1 + k % 5) for k in range(20)]),
        user_id=pl.lit("u1"),
        source=pl.lit("pmdata"),
    )
    base = empty("self_report")
    d = replace(d, reports=pl.concat([base, rep], how="diagonal_relaxed").select(base.columns))
    assert "fatigue" not in set(ins.tags(d)["tag"])
    assert {"hard_training_day", "late_bedtime"} <= set(ins.tags(d)["tag"])
