"""The planted respiration and temperature effects survive every vendor format: synthetic files
are written, ingested through the runner, refreshed to gold, and the hard-day effect is
recovered from ``nightly_features`` (nothing here reads the simulation except the truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.settings import Settings
from tunewell.synth import people
from tunewell.synth.apple_health import write_apple
from tunewell.synth.fitbit import write_fitbit
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.oura import write_oura
from tunewell.synth.whoop import write_whoop
from tunewell.synth.zones import user_settings

DAYS = 35
USER = "p002"  # does not travel


def _write(fmt: str, pop, person, out: Path) -> list[Path]:
    if fmt == "garmin_fit":
        return write_garmin(pop, person, out)
    if fmt == "apple_health":
        return [write_apple(pop, person, out)]
    if fmt == "oura":
        return write_oura(pop, person.user_id, out)
    if fmt == "whoop":
        return write_whoop(pop, person.user_id, out)
    return write_fitbit(pop, person, out)


@pytest.fixture(scope="module")
def pop():
    return people.simulate(n_users=2, days=DAYS, seed=21)


# resp / temperature source each format should name (Apple and WHOOP export absolute temperature)
EXPECTED = {
    "garmin_fit": ("garmin_fit:respiration_rate", "garmin_fit:temperature_deviation", True),
    "apple_health": ("apple_health:respiration_rate", "apple_health:skin_temp", True),
    "oura": ("oura:respiration_rate", "oura:temperature_deviation", True),
    "whoop": ("whoop:respiration_rate", "whoop:skin_temp", True),
    "fitbit": ("fitbit:respiration_rate", "fitbit:temperature_deviation", False),
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_hard_days_raise_breathing_and_temperature_in_every_format(fmt, pop, tmp_path):
    person = pop.person(USER)
    s = Settings(lake=tmp_path / "lake", users={USER: user_settings(pop, person)})
    paths = _write(fmt, pop, person, tmp_path / "in")
    rep = runner.ingest_paths(paths, USER, s)
    assert all(f.status == "ingested" for f in rep.files), [f.error for f in rep.files]
    refresh_gold(s, None, full=True)
    nf = store.read(s.lake, "nightly_features")
    truth = pop.nights.filter(pl.col("user_id") == USER).select(
        "sleep_date",
        "hard_day_before",
        pl.col("is_short").shift(1, fill_value=False).alias("prev_short"),
        pl.col("resp_rate").alias("resp_true"),
        pl.col("spo2_pct").alias("spo2_true"),
    )
    j = nf.join(truth, on="sleep_date")
    resp_src, temp_src, has_spo2 = EXPECTED[fmt]
    r = j.filter(pl.col("resp_rate_ok"))
    assert r.height >= DAYS - 2 and set(r["resp_rate_source"]) == {resp_src}
    # the night's value is the planted one (Garmin and Apple average noisy samples)
    assert (r["resp_rate"] - r["resp_true"]).abs().max() < 0.3
    t = j.filter(pl.col("skin_temp_dev_ok"))
    assert t.height >= DAYS - 10 and set(t["skin_temp_dev_source"]) == {temp_src}
    if has_spo2:
        sp = j.filter(pl.col("spo2_ok"))
        assert sp.height >= DAYS - 2 and (sp["spo2_pct"] - sp["spo2_true"]).abs().max() < 1.0

    def effect(df: pl.DataFrame, col: str) -> float:
        """Hard-day coefficient of value ~ 1 + hard + previous-night-short."""
        x = np.column_stack(
            [np.ones(df.height), df["hard_day_before"].to_numpy(), df["prev_short"].to_numpy()]
        ).astype(float)
        return float(np.linalg.lstsq(x, df[col].to_numpy(), rcond=None)[0][1])

    assert effect(r, "resp_rate") == pytest.approx(people.HARD_DAY_RESP, abs=0.3)
    assert effect(t, "skin_temp_dev") == pytest.approx(people.HARD_DAY_TEMP, abs=0.12)


def test_garmin_daily_resting_hr_lands_on_its_own_night(pop, tmp_path):
    """A Garmin daily log is stamped at the local midnight that *closes* its day (as the real
    vivofit ``MonitoringFile.fit`` stamps its ``duration_min`` 1440 summaries), so the day's
    ``monitoring_hr_data`` resting HR belongs to that day's night, not the next one."""
    person = pop.person(USER)
    s = Settings(lake=tmp_path / "lake", users={USER: user_settings(pop, person)})
    rep = runner.ingest_paths(write_garmin(pop, person, tmp_path / "in"), USER, s)
    assert all(f.status == "ingested" for f in rep.files), [f.error for f in rep.files]
    refresh_gold(s, None, full=True)
    nf = store.read(s.lake, "nightly_features").filter(pl.col("resting_hr_source") == "vendor")
    truth = pop.nights.filter(pl.col("user_id") == USER).select("sleep_date", "rhr_bpm")
    j = nf.join(truth, on="sleep_date")
    assert j.height >= DAYS - 2
    # the planted value of that very night (the wellness file stores it rounded to 1 bpm)
    assert (j["resting_hr"] - j["rhr_bpm"].round()).abs().max() == 0
    # ... and not the one before it (the shifted series would still correlate, ρ ≈ 0.99)
    shifted = j["rhr_bpm"].round().shift(1)
    assert (j["resting_hr"] != shifted).sum() > j.height // 2
