"""PMData self-report reader (wellness, srpe) on real participant files."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.store import read


@pytest.mark.realdata
def test_wellness_and_srpe(settings, tmp_path):
    base = shared("pmdata", "p01", "pmsys")
    rep = ingest_paths([base], "u1", settings)
    status = {f.file.rsplit("/", 1)[-1]: f.status for f in rep.files}
    assert status == {"wellness.csv": "ingested", "srpe.csv": "ingested", "injury.csv": "skipped"}

    sr = read(settings.lake, "self_report", ["u1"])
    assert sr.height == 138 * 7  # 138 answers, 7 numeric items each
    assert set(sr["item"]) == {
        "fatigue",
        "mood",
        "readiness",
        "sleep_duration_h",
        "sleep_quality",
        "soreness",
        "stress",
    }
    first = dict(sr.filter(pl.col("date") == date(2019, 11, 1)).select("item", "value").rows())
    assert first == {
        "fatigue": 2,
        "mood": 3,
        "readiness": 5,
        "sleep_duration_h": 6,
        "sleep_quality": 3,
        "soreness": 2,
        "stress": 3,
    }

    wo = read(settings.lake, "workout", ["u1"]).sort("start_utc")
    assert wo.height == 34
    w = wo.row(0, named=True)
    assert (w["activity"], w["rpe"], w["duration_min"]) == ("individual, running", 7.0, 30.0)
    assert w["end_utc"].isoformat() == "2019-11-05T22:51:54.710000+00:00"
    assert w["start_utc"].isoformat() == "2019-11-05T22:21:54.710000+00:00"

    # a copy with other bytes brings no new rows
    copy = tmp_path / "copy" / "wellness.csv"
    copy.parent.mkdir()
    copy.write_text((base / "wellness.csv").read_text() + "\n")
    rep2 = ingest_paths([copy], "u1", settings)
    assert rep2.files[0].status == "ingested"
    assert rep2.tables["self_report"].inserted == 0


def test_local_date_of_late_answer(settings, tmp_path):
    f = tmp_path / "in" / "wellness.csv"
    f.parent.mkdir()
    f.write_text(
        "effective_time_frame,fatigue,mood,readiness,sleep_duration_h,sleep_quality,soreness,"
        "soreness_area,stress\n2020-01-01T23:30:00.000Z,3,,4,7.5,4,2,[],1\n"
    )
    ingest_paths([f], "u1", settings)
    sr = read(settings.lake, "self_report", ["u1"])
    # 23:30 UTC is 00:30 on 2 January in Berlin; the empty mood answer is not a row
    assert set(sr["date"]) == {date(2020, 1, 2)}
    assert sr.height == 6
