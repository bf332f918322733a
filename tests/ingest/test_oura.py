"""Oura reader: synthetic v2/v1 exports against the simulated truth, and hand-written edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tunewell.ingest.formats import oura
from tunewell.ingest.registry import detect, read_head
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import store
from tunewell.settings import Settings, UserSettings
from tunewell.synth.oura import write_oura
from tunewell.synth.people import simulate

OURA_TABLES = ("sleep_episode", "sleep_stage", "hrv", "heart_rate", "vendor_score", "vitals")
USER = "p001"  # travels to New York for a week: offsets change mid-export


@pytest.fixture(scope="module")
def pop():
    return simulate(n_users=1, days=21, seed=11)


@pytest.fixture
def osettings(lake: Path) -> Settings:
    return Settings(lake=lake, users={USER: UserSettings(USER, tz="Europe/Berlin")})


def _ingest_v2(pop, tmp_path: Path, st: Settings):
    paths = write_oura(pop, USER, tmp_path / "in")
    return paths, ingest_paths(paths, USER, st)


def test_v2_matches_truth(pop, tmp_path, osettings):
    paths, rep = _ingest_v2(pop, tmp_path, osettings)
    assert [f.status for f in rep.files] == ["ingested"] * 5
    assert all(detect(p, read_head(p)) is oura for p in paths)
    truth = pop.nights.filter(pl.col("user_id") == USER)
    epi = store.read(osettings.lake, "sleep_episode").sort("start_utc")
    assert epi.height == truth.height
    assert epi["start_utc"].to_list() == truth.sort("bed_utc")["bed_utc"].to_list()
    assert epi["sleep_date"].to_list() == truth.sort("bed_utc")["sleep_date"].to_list()
    assert epi["is_main_sleep"].all()
    assert set(epi["tz_source"]) == {"record"}
    assert set(epi["utc_offset_min"]) == {60, 120, -240}  # CET, CEST after DST, New York EDT

    hrv = store.read(osettings.lake, "hrv")
    five = hrv.filter(pl.col("window") == "5min")
    per_night = (
        five.join(epi.select("start_utc", "end_utc", "sleep_date"), how="cross", suffix="_e")
        .filter(pl.col("start_utc").is_between(pl.col("start_utc_e"), pl.col("end_utc_e")))
        .group_by("sleep_date")
        .agg(pl.col("value_ms").median().alias("median5"))
        .join(truth.select("sleep_date", "rmssd_ms"), on="sleep_date")
    )
    assert per_night.height == truth.height
    rel = ((per_night["median5"] - per_night["rmssd_ms"]).abs() / per_night["rmssd_ms"]).max()
    assert rel < 0.05
    nightly = hrv.filter(pl.col("window") == "nightly")
    assert nightly.height == truth.height and set(hrv["metric"]) == {"rmssd"}

    stages = store.read(osettings.lake, "sleep_stage")
    assert set(stages["episode_id"]) == set(epi["record_id"])
    deep = stages.filter(pl.col("stage") == "deep")
    deep_min = (deep["end_utc"] - deep["start_utc"]).dt.total_minutes().sum()
    truth_deep = pop.stages.filter((pl.col("user_id") == USER) & (pl.col("stage") == "deep"))
    truth_min = (truth_deep["end_utc"] - truth_deep["start_utc"]).dt.total_seconds().sum() / 60
    assert abs(deep_min - truth_min) / truth_min < 0.1  # 5-min epochs vs 30-s truth

    hr = store.read(osettings.lake, "heart_rate")
    assert set(hr["context"]) == {"sleep"} and hr["bpm"].min() > 30
    scores = store.read(osettings.lake, "vendor_score")
    assert {"sleep_score", "readiness_score", "activity_score", "readiness.hrv_balance"} <= set(
        scores["name"]
    )
    vit = store.read(osettings.lake, "vitals")
    assert set(vit["metric"]) == {"temperature_deviation", "respiration_rate", "spo2"}
    by_date = epi.select("sleep_date", "start_utc", "end_utc", "utc_offset_min")
    breath = vit.filter(pl.col("metric") == "respiration_rate").join(
        by_date, on=["start_utc", "end_utc"]
    )
    assert breath.height == truth.height  # one per sleep, stamped over that sleep
    j = breath.join(truth.select("sleep_date", "resp_rate"), on="sleep_date")
    assert (j["value"] - j["resp_rate"]).abs().max() < 1e-3
    for metric, col in (("temperature_deviation", "skin_temp_dev"), ("spo2", "spo2_pct")):
        daily = vit.filter(pl.col("metric") == metric).with_columns(
            (pl.col("start_utc").dt.replace_time_zone(None) + pl.duration(minutes="utc_offset_min"))
            .dt.date()
            .alias("sleep_date")
        )
        j = daily.join(truth.select("sleep_date", col), on="sleep_date")
        assert j.height == truth.height, metric
        assert (j["value"] - j[col]).abs().max() < 6e-3, metric
    spo2 = vit.filter(pl.col("metric") == "spo2")
    assert ((spo2["end_utc"] - spo2["start_utc"]).dt.total_hours() == 24).all()


def test_reingest_and_v1_export_of_same_account_add_nothing(pop, tmp_path, osettings):
    paths, _ = _ingest_v2(pop, tmp_path, osettings)
    again = ingest_paths(paths, USER, osettings)
    assert {f.status for f in again.files} == {"already_seen"}
    before = {t: store.read(osettings.lake, t).height for t in OURA_TABLES}
    v1 = write_oura(pop, USER, tmp_path / "v1", style="v1")
    rep = ingest_paths(v1, USER, osettings)
    assert rep.files[0].status == "ingested"
    assert sum(s.inserted for s in rep.tables.values()) == 0
    after = {t: store.read(osettings.lake, t).height for t in before}
    assert after == before


V1_TRAILING = """[{"sleep": [
  {"summary_date": "2024-05-01", "period_id": 1, "is_longest": 1, "timezone": 330,
   "bedtime_start": "2024-05-01T23:10:00+05:30", "bedtime_end": "2024-05-02T00:00:00+05:30",
   "score": 70, "score_total": 60, "total": 2100, "duration": 3000, "onset_latency": 300,
   "efficiency": 70, "hr_lowest": 50, "hr_average": 55.5, "rmssd": 41,
   "hr_5min": [0, 56, 54, 0, 52, 51, 50, 53, 55, 0,],
   "rmssd_5min": [0, 40, 44, 0, 38, 42, 0, 39, 41, 0,],
   "hypnogram_5min": "4422444113", "temperature_delta": -0.2,},
],
"readiness": [{"summary_date": "2024-05-01", "period_id": 1, "score": 77,
               "score_hrv_balance": 80, "score_resting_hr": 90,},],
"activity": [],}]
"""


def test_v1_trailing_commas_zero_values_and_half_hour_zone(tmp_path, settings):
    f = tmp_path / "oura_v1.json"
    f.write_text(V1_TRAILING)
    assert oura.sniff(f, read_head(f))
    with pytest.raises(json.JSONDecodeError):
        json.loads(V1_TRAILING)
    rep = ingest_paths([f], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    epi = store.read(settings.lake, "sleep_episode")
    assert epi.height == 1
    row = epi.row(0, named=True)
    assert row["utc_offset_min"] == 330 and row["tz_source"] == "record"
    assert str(row["start_utc"]) == "2024-05-01 17:40:00+00:00"
    assert str(row["sleep_date"]) == "2024-05-02"
    # hypnogram 4422444113: onset at epoch 2, last sleep epoch 9 → 3 awake epochs between
    # (one run of 15 min), so WASO 15 min and one awakening > 5 min.
    assert row["waso_min"] == 15.0 and row["awakenings"] == 1
    assert row["sol_min"] == 5.0 and row["tst_min"] == 35.0
    hrv = store.read(settings.lake, "hrv")
    assert sorted(hrv.filter(pl.col("window") == "5min")["value_ms"].to_list()) == [
        38.0,
        39.0,
        40.0,
        41.0,
        42.0,
        44.0,
    ]
    assert hrv.filter(pl.col("window") == "nightly")["value_ms"].to_list() == [41.0]
    hr = store.read(settings.lake, "heart_rate")
    assert hr.height == 7 and 0 not in hr["bpm"].to_list()
    scores = store.read(settings.lake, "vendor_score")
    ready = scores.filter(pl.col("name") == "readiness_score")
    assert ready["value"].to_list() == [77.0] and str(ready["date"][0]) == "2024-05-02"
    assert "sleep.total_sleep" in set(scores["name"])


def test_v2_nulls_in_items_nap_and_rest_periods(tmp_path, settings):
    base = {
        "heart_rate": {
            "interval": 300.0,
            "items": [None, 60, None, 58],
            "timestamp": "2024-03-02T01:00:00-05:00",
        },
        "hrv": {
            "interval": 300.0,
            "items": [None, 35, None, 33],
            "timestamp": "2024-03-02T01:00:00-05:00",
        },
    }
    docs = [
        base
        | {
            "id": "a",
            "day": "2024-03-02",
            "type": "long_sleep",
            "bedtime_start": "2024-03-02T01:00:00-05:00",
            "bedtime_end": "2024-03-02T07:00:00-05:00",
            "time_in_bed": 21600,
            "total_sleep_duration": 19800,
            "sleep_phase_5_min": "2222",
            "average_hrv": 34,
        },
        {
            "id": "b",
            "day": "2024-03-02",
            "type": "late_nap",
            "bedtime_start": "2024-03-02T15:00:00-05:00",
            "bedtime_end": "2024-03-02T15:40:00-05:00",
            "sleep_phase_5_min": "22",
        },
        {
            "id": "c",
            "day": "2024-03-02",
            "type": "rest",
            "bedtime_start": "2024-03-02T17:00:00-05:00",
            "bedtime_end": "2024-03-02T18:00:00-05:00",
        },
    ]
    f = tmp_path / "sleep.json"
    f.write_text(json.dumps({"data": docs, "next_token": None}))
    rep = ingest_paths([f], "u2", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    epi = store.read(settings.lake, "sleep_episode").sort("start_utc")
    assert epi["vendor_episode_id"].to_list() == ["a", "b"]
    assert epi["is_main_sleep"].to_list() == [True, False]
    hrv = store.read(settings.lake, "hrv").filter(pl.col("window") == "5min").sort("start_utc")
    assert hrv["value_ms"].to_list() == [35.0, 33.0]
    assert str(hrv["start_utc"][0]) == "2024-03-02 06:05:00+00:00"


def test_json_from_other_vendors_is_not_claimed(tmp_path):
    f = tmp_path / "sleep-2020-01-01.json"
    f.write_text(json.dumps([{"logId": 1, "dateOfSleep": "2020-01-01", "levels": {}}]))
    assert not oura.sniff(f, read_head(f))


def test_broken_json_is_quarantined(tmp_path, settings):
    f = tmp_path / "broken.json"
    f.write_text('{"data": [{"bedtime_start": "2024-01-01T00:00:00+00:00", ')
    rep = ingest_paths([f], "u1", settings)
    assert rep.files[0].status == "quarantined"
    assert "JSON" in rep.files[0].error


def test_a_valid_export_with_nothing_scored_is_ingested_not_quarantined(tmp_path, settings):
    f = tmp_path / "daily_activity.json"
    f.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "id": "a1",
                        "class_5_min": "000",
                        "score": None,
                        "steps": 8000,
                        "day": "2024-03-11",
                        "timestamp": "2024-03-11T04:00:00.000-04:00",
                    }
                ],
                "next_token": None,
            }
        )
    )
    rep = ingest_paths([f], "u1", settings)
    (res,) = rep.files
    assert (res.format, res.status, res.rows) == ("oura", "ingested", {})
    assert "without values" in res.notes[0]


def test_breathing_and_spo2_missing_or_null_are_not_values(tmp_path, settings):
    """Real v2 dumps carry ``average_breath: null`` on some sleeps and ``spo2_percentage: null``
    on days the ring measured nothing: no row, and no zero."""
    sleep = {
        "id": "s1",
        "day": "2024-03-02",
        "type": "long_sleep",
        "bedtime_start": "2024-03-02T01:00:00-05:00",
        "bedtime_end": "2024-03-02T07:00:00-05:00",
        "sleep_phase_5_min": "2222",
        "average_breath": None,
    }
    spo2 = [
        {"id": "a", "day": "2024-03-02", "spo2_percentage": {"average": 96.25}},
        {"id": "b", "day": "2024-03-03", "spo2_percentage": None},
        {"id": "c", "day": "2024-03-04", "spo2_percentage": {"average": 0.0}},
    ]
    f1, f2 = tmp_path / "sleep.json", tmp_path / "daily_spo2.json"
    f1.write_text(
        json.dumps(
            {
                "data": [
                    sleep,
                    sleep
                    | {
                        "id": "s2",
                        "average_breath": 15.5,
                        "bedtime_start": "2024-03-03T01:00:00-05:00",
                        "bedtime_end": "2024-03-03T07:00:00-05:00",
                        "day": "2024-03-03",
                    },
                ]
            }
        )
    )
    f2.write_text(json.dumps({"data": spo2, "next_token": None}))
    rep = ingest_paths([f1, f2], "u2", settings)
    assert [f.status for f in rep.files] == ["ingested"] * 2, [f.error for f in rep.files]
    v = store.read(settings.lake, "vitals").sort("start_utc")
    rows = [(r["metric"], str(r["start_utc"]), r["value"]) for r in v.iter_rows(named=True)]
    assert rows == [
        # the SpO2 file has no sleeps: local midnight in the user's zone (New York, EST)
        ("spo2", "2024-03-02 05:00:00+00:00", 96.25),
        ("respiration_rate", "2024-03-03 06:00:00+00:00", 15.5),
    ]
