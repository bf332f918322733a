"""Fitabase CSV reader: participant selection, duplicates, two overlapping export periods."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.store import read

P1 = "Fitabase Data 3.12.16-4.11.16"
P2 = "Fitabase Data 4.12.16-5.12.16"


@pytest.mark.realdata
def test_sleep_day_duplicates_dropped_and_participant_required(settings):
    f = shared("fitbit-fitabase", P2, "sleepDay_merged.csv")
    rep = ingest_paths([f], "u2", settings)
    assert rep.files[0].status == "quarantined"
    assert "fitabase_id" in rep.files[0].error

    rep = ingest_paths(
        [f], "u2", settings, options={"fitabase_id": "4388161847"}, retry_quarantined=True
    )
    assert rep.files[0].status == "ingested", rep.files[0].error
    vs = read(settings.lake, "vendor_score", ["u2"])
    raw = pl.read_csv(f, infer_schema=False).filter(pl.col("Id") == "4388161847")
    # the file repeats 5/5/2016 for this participant; one day, three figures each
    assert raw.height == raw["SleepDay"].n_unique() + 1
    assert vs.height == 3 * raw["SleepDay"].n_unique()
    day = vs.filter(pl.col("date") == date(2016, 5, 5))
    assert dict(day.select("name", "value").iter_rows()) == {
        "total_minutes_asleep": 471.0,
        "total_time_in_bed": 495.0,
        "total_sleep_records": 1.0,
    }


@pytest.mark.realdata
def test_two_periods_dedupe_and_known_values(settings):
    pid = "6962181067"  # present in both periods (10 shared hours, one shared weight)
    files = [
        shared("fitbit-fitabase", p, n)
        for p in (P1, P2)
        for n in ("hourlySteps_merged.csv", "dailyActivity_merged.csv", "weightLogInfo_merged.csv")
    ]
    files += [
        shared("fitbit-fitabase", P2, n)
        for n in (
            "dailySteps_merged.csv",
            "minuteStepsWide_merged.csv",
            "hourlyCalories_merged.csv",
        )
    ]
    # u2 lives in New York, like the study's participants (UTC-4 in April)
    rep = ingest_paths(files, "u2", settings, options={"fitabase_id": pid})
    status = {f.file: f.status for f in rep.files}
    assert sum(s == "ingested" for s in status.values()) == 8
    assert sum(s == "skipped" for s in status.values()) == 1  # calories: no table for it

    steps = read(settings.lake, "steps", ["u2"]).with_columns(
        h=(pl.col("end_utc") - pl.col("start_utc")).dt.total_minutes()
    )
    hourly = steps.filter(pl.col("h") == 60)
    raw = pl.concat(
        [
            pl.read_csv(shared("fitbit-fitabase", p, "hourlySteps_merged.csv"), infer_schema=False)
            for p in (P1, P2)
        ]
    )
    raw = raw.filter(pl.col("Id") == pid)
    overlap = raw.height - raw["ActivityHour"].n_unique()
    assert overlap > 0  # the two periods share hours
    # 2:00 AM on 3/13/2016 did not exist in New York, yet the export has a row for it (29 steps):
    # it is kept as a zero-length interval at the DST jump instead of colliding with 3:00 AM
    gap = steps.filter(pl.col("h") == 0)
    assert gap.select("steps", "start_utc").rows() == [
        (29.0, pl.select(pl.datetime(2016, 3, 13, 7, time_zone="UTC")).item())
    ]
    assert hourly.height + gap.height == raw["ActivityHour"].n_unique()

    daily = steps.filter(pl.col("h") == 24 * 60)
    # dailyActivity and dailySteps give the same day the same record
    assert daily["record_id"].n_unique() == daily.height
    d = daily.filter(pl.col("start_utc") == pl.datetime(2016, 4, 12, 4, time_zone="UTC"))
    assert d["steps"].to_list() == [10199.0]
    minute = steps.filter(pl.col("h") == 1)
    hour0 = minute.filter(
        pl.col("start_utc").is_between(
            pl.datetime(2016, 4, 13, 4, time_zone="UTC"),
            pl.datetime(2016, 4, 13, 4, 59, time_zone="UTC"),
        )
    )
    assert hour0.height == 60
    assert hour0["steps"].sum() == 16  # Steps00..Steps59 of 4/13/2016 12:00:00 AM

    w = read(settings.lake, "vitals", ["u2"]).sort("start_utc")
    assert set(w["metric"]) == {"weight"}
    raw_w = pl.concat(
        [
            pl.read_csv(
                shared("fitbit-fitabase", p, "weightLogInfo_merged.csv"), infer_schema=False
            )
            for p in (P1, P2)
        ]
    )
    raw_w = raw_w.filter(pl.col("Id") == pid)
    assert w.height == raw_w["Date"].n_unique() == raw_w.height - 1
    shared_day = w.filter(
        pl.col("start_utc") == pl.datetime(2016, 4, 13, 3, 59, 59, time_zone="UTC")
    )
    assert shared_day["value"].to_list() == [62.5]


def test_synthetic_narrow_minutes_and_heartrate(settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "minuteStepsNarrow_merged.csv").write_text(
        "Id,ActivityMinute,Steps\n7,4/12/2016 11:59:00 PM,12\n7,4/13/2016 12:00:00 AM,3\n"
    )
    (inbox / "heartrate_seconds_merged.csv").write_text(
        "Id,Time,Value\n7,4/12/2016 7:21:00 AM,97\n7,4/12/2016 7:21:05 AM,102\n"
    )
    rep = ingest_paths([inbox], "u2", settings)
    assert {f.status for f in rep.files} == {"ingested"}, [f.error for f in rep.files]
    steps = read(settings.lake, "steps", ["u2"]).sort("start_utc")
    assert steps["steps"].to_list() == [12.0, 3.0]
    # New York is UTC-4 in April
    assert steps["start_utc"][0].isoformat() == "2016-04-13T03:59:00+00:00"
    hr = read(settings.lake, "heart_rate", ["u2"]).sort("start_utc")
    assert hr["bpm"].to_list() == [97.0, 102.0]
    assert hr["start_utc"][0].isoformat() == "2016-04-12T11:21:00+00:00"
