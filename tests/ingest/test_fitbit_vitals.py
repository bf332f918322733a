"""Fitbit Takeout vitals CSVs (breathing rate, SpO2, computed temperature): synthetic files
against the simulated truth, hand-written header variants, and broken files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tunewell.ingest.formats import fitbit_vitals
from tunewell.ingest.registry import detect, read_head
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import store
from tunewell.settings import Settings
from tunewell.synth.fitbit import BASELINE_NIGHTS, write_fitbit
from tunewell.synth.people import simulate
from tunewell.synth.zones import user_settings


@pytest.fixture(scope="module")
def pop():
    return simulate(n_users=2, days=14, seed=3)


def test_synthetic_takeout_csvs_match_truth(pop, tmp_path):
    person = pop.people[1]  # Europe/London, crosses the DST change
    uid = person.user_id
    paths = [p for p in write_fitbit(pop, person, tmp_path / "in") if p.suffix == ".csv"]
    mine = [p for p in paths if detect(p, read_head(p)) is fitbit_vitals]
    assert len(mine) == 3  # sleep_score.csv stays with the JSON reader
    s = Settings(lake=tmp_path / "lake", users={uid: user_settings(pop, person)})
    rep = ingest_paths(mine, uid, s)
    assert [f.status for f in rep.files] == ["ingested"] * 3, [f.error for f in rep.files]
    v = store.read(s.lake, "vitals")
    truth = pop.nights.filter(pl.col("user_id") == uid).sort("sleep_date")
    assert set(v["source"]) == {"fitbit"} and set(v["tz_source"]) == {"user_setting"}
    local_day = (
        (pl.col("start_utc").dt.replace_time_zone(None) + pl.duration(minutes="utc_offset_min"))
        .dt.date()
        .alias("sleep_date")
    )
    for metric, col in (("respiration_rate", "resp_rate"), ("spo2", "spo2_pct")):
        got = v.filter(pl.col("metric") == metric).with_columns(local_day).sort("sleep_date")
        assert got["sleep_date"].to_list() == truth["sleep_date"].to_list(), metric
        # a date-level row: local midnight .. next local midnight
        hours = (got["end_utc"] - got["start_utc"]).dt.total_hours()
        assert hours.is_in([23, 24, 25]).all() and (got["utc_offset_min"] % 60 == 0).all()
        np.testing.assert_allclose(got["value"], truth[col], atol=0.051)
    temp = v.filter(pl.col("metric") == "skin_temp").sort("start_utc")
    assert temp["start_utc"].to_list() == truth["onset_utc"].to_list()
    np.testing.assert_allclose(temp["value"], truth["skin_temp_c"], atol=1e-3)
    dev = v.filter(pl.col("metric") == "temperature_deviation").sort("start_utc")
    # no deviation while Fitbit has no baseline (NaN sums), then sum / samples
    assert dev.height == truth.height - BASELINE_NIGHTS
    np.testing.assert_allclose(dev["value"], truth["skin_temp_dev"][BASELINE_NIGHTS:], atol=1e-3)
    again = ingest_paths(mine, uid, s)
    assert {f.status for f in again.files} == {"already_seen"}


def test_header_variants_zero_values_and_daily_breathing(settings, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    resp = tmp_path / "Daily Respiratory Rate Summary - 2024-01-01.csv"
    resp.write_text(
        "timestamp,daily_respiratory_rate\n2024-01-11T00:00:00,15.4\n2024-01-12T00:00:00,0\n"
    )
    spo2 = tmp_path / "Daily SpO2 - 2024-01-01.csv"
    spo2.write_text(
        '\ufeff"timestamp","average_value","lower_bound","upper_bound"\n'
        "2024-01-11T00:00:00Z,96.5,93.0,99.9\n2024-01-12T00:00:00Z,,,\n"
    )
    full = tmp_path / "Respiratory Rate Summary - 2024-01-01.csv"
    full.write_text(
        "timestamp,full_sleep_breathing_rate,full_sleep_standard_deviation\n"
        "2024-01-13T06:52:30,14.8,1.2\n2024-01-14T07:01:00,0.0,0.0\n"
    )
    rep = ingest_paths([resp, spo2, full], "u1", settings)
    assert [f.status for f in rep.files] == ["ingested"] * 3, [f.error for f in rep.files]
    v = store.read(settings.lake, "vitals").sort("start_utc")
    # Berlin in January is UTC+1: local midnight is 23:00 UTC the day before
    rows = [(r["metric"], r["start_utc"], r["value"]) for r in v.iter_rows(named=True)]
    assert rows == [
        ("respiration_rate", datetime(2024, 1, 10, 23, tzinfo=UTC), 15.4),
        ("spo2", datetime(2024, 1, 10, 23, tzinfo=UTC), 96.5),
        ("respiration_rate", datetime(2024, 1, 12, 23, tzinfo=UTC), 14.8),
    ]


def test_unparseable_times_quarantine_the_file(settings, tmp_path):
    bad = tmp_path / "Computed Temperature - 2024-01-01.csv"
    bad.write_text(
        "type,sleep_start,sleep_end,temperature_samples,nightly_temperature,"
        "baseline_relative_sample_sum\nSLEEP,yesterday,2024-01-11T07:05,530,33.4,10.6\n"
    )
    rep = ingest_paths([bad], "u1", settings)
    assert rep.files[0].status == "quarantined" and bad.name in rep.files[0].error
    assert store.read(settings.lake, "vitals").is_empty()


def test_other_csvs_are_not_claimed(tmp_path):
    other = Path(tmp_path / "x.csv")
    other.write_text("timestamp,value\n2024-01-11T00:00:00,96\n")
    assert not fitbit_vitals.sniff(other, read_head(other))


@pytest.mark.realdata
def test_real_fitbit_values_pass_the_vitals_expectations():
    """LifeSnaps' Fitbit Sense table holds the same fields (full_sleep_breathing_rate, spo2,
    nightly_temperature): after the reader's value rule (0 = not measured) every real value is
    inside the silver expectations, so real exports are not quarantined row by row."""
    from tests.conftest import shared
    from tunewell.ingest.validate import VITAL_RANGES

    df = pl.read_csv(
        shared("lifesnaps", "daily_fitbit_sema_df_unprocessed.csv"), infer_schema_length=0
    )
    checks = {
        "full_sleep_breathing_rate": "respiration_rate",
        "spo2": "spo2",
        "nightly_temperature": "skin_temp",
    }
    for col, metric in checks.items():
        raw = df[col].cast(pl.Float64, strict=False).drop_nulls().drop_nans()
        kept = df.select(fitbit_vitals._num(col).alias("v"))["v"].drop_nulls()
        lo, hi = VITAL_RANGES[metric]
        assert kept.len() > 500, col
        assert kept.is_between(lo, hi).all(), (col, kept.min(), kept.max())
        assert raw.len() - kept.len() == (raw == 0).sum(), col  # only the zeros are dropped


def test_minute_spo2_is_claimed_by_its_name_and_read_as_samples(settings, tmp_path):
    f = tmp_path / "Minute SpO2 - 2024-01-11.csv"
    f.write_text("timestamp,value\n2024-01-11T02:00:00,95.4\n2024-01-11T02:01:00,0\n")
    assert fitbit_vitals.sniff(f, read_head(f))
    rep = ingest_paths([f], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    v = store.read(settings.lake, "vitals")
    assert v.select("metric", "value", "end_utc").rows() == [("spo2", 95.4, None)]
    assert v["start_utc"][0] == datetime(2024, 1, 11, 1, tzinfo=UTC)  # 02:00 in Berlin
