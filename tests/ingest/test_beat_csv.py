"""MMASH RR.csv / Actigraph.csv reader: dates from an option, rollover, per-minute data."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.store import read

START = {"start_date": date(2017, 3, 6)}


@pytest.mark.realdata
def test_missing_start_date_is_quarantined(settings):
    rep = ingest_paths([shared("mmash", "user_1", "RR.csv")], "u1", settings)
    f = rep.files[0]
    assert f.status == "quarantined"
    assert "start_date" in f.error and "RR.csv" in f.error


@pytest.mark.realdata
def test_rr_and_actigraph(settings):
    rr_file = shared("mmash", "user_1", "RR.csv")
    act_file = shared("mmash", "user_1", "Actigraph.csv")
    rep = ingest_paths([rr_file, act_file], "u1", settings, options=START)
    assert {f.status for f in rep.files} == {"ingested"}, [f.error for f in rep.files]

    raw = pl.read_csv(rr_file)
    rr = read(settings.lake, "rr_interval", ["u1"]).sort("start_utc")
    in_range = raw.filter(pl.col("ibi_s").is_between(0.3, 2.0))
    # every beat has its own time, and only out-of-range intervals are dropped by validation
    assert rr.height == in_range.height
    assert rr["record_id"].n_unique() == rr.height
    assert rr["rr_ms"].sum() == pytest.approx(in_range["ibi_s"].sum() * 1000)
    assert set(rr["source"]) == {"rr_csv"}
    # first beat 10:10:17 on day 1, Berlin UTC+1 in March; the last on day 2 at 09:45:26
    assert rr["start_utc"][0].isoformat().startswith("2017-03-06T09:10:")
    assert rr["start_utc"][-1].isoformat().startswith("2017-03-07T08:45:26")

    steps = read(settings.lake, "steps", ["u1"])
    act = pl.read_csv(act_file)
    assert steps["steps"].sum() == act["Steps"].sum() == 13625
    assert ((steps["end_utc"] - steps["start_utc"]).dt.total_seconds() == 60).all()
    hr = read(settings.lake, "heart_rate", ["u1"])
    minute = act.filter(pl.col("time").str.starts_with("10:11:") & (pl.col("day") == 1))
    expected = minute.filter(pl.col("HR") > 0)["HR"].mean()
    got = hr.filter(pl.col("start_utc") == pl.datetime(2017, 3, 6, 9, 11, time_zone="UTC"))
    assert got["bpm"].to_list() == [pytest.approx(expected)]
    assert set(hr["context"]) == {"sample"} and set(hr["source"]) == {"actigraph_csv"}


def test_rollover_without_day_change_and_odd_labels(settings, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "RR.csv").write_text(
        ",ibi_s,day,time\n"
        "1,0.8,1,23:59:59\n2,0.5,1,00:00:00\n3,0.4,1,00:00:00\n"  # clock wraps, label stays 1
        "4,0.9,-29,00:00:01\n"  # MMASH users 8/9 label the second day -29
    )
    rep = ingest_paths([inbox], "u2", settings, options={"start_date": "2020-01-01"})
    assert rep.files[0].status == "ingested", rep.files[0].error
    rr = read(settings.lake, "rr_interval", ["u2"]).sort("start_utc")
    local = rr.select(
        (pl.col("start_utc") + pl.duration(minutes=pl.col("utc_offset_min"))).dt.replace_time_zone(
            None
        )
    )["start_utc"].to_list()
    assert local == [
        datetime(2020, 1, 1, 23, 59, 59),
        datetime(2020, 1, 2, 0, 0, 0),
        # 0.4 s after the previous beat, + 1 µs for its rank within the second
        datetime(2020, 1, 2, 0, 0, 0, 400_001),
        datetime(2020, 1, 2, 0, 0, 1),
    ]
    assert rr["rr_ms"].to_list() == [800.0, 500.0, 400.0, 900.0]
