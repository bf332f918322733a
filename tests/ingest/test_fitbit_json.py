"""Fitbit JSON reader: real PMData exports through the runner, plus small Takeout-style files."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.base import FileContext
from tunewell.ingest.formats import fitbit_json
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.store import read
from tunewell.settings import UserSettings


def _minutes() -> pl.Expr:
    return (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 60


@pytest.mark.realdata
def test_pmdata_sleep_through_runner(settings, tmp_path):
    src = shared("pmdata", "p01", "fitbit", "sleep.json")
    rep = ingest_paths([src], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    ep = read(settings.lake, "sleep_episode", ["u1"])
    # 155 logs, of which 5 are repeated copies of the same logId
    assert ep.height == 150
    assert ep["vendor_episode_id"].n_unique() == 150
    night = ep.filter(pl.col("vendor_episode_id") == "24486013387").row(0, named=True)
    assert night["tst_min"] == 378
    assert night["tib_min"] == 430
    assert night["waso_min"] == 52
    assert night["sleep_date"] == date(2019, 11, 2)
    assert night["is_main_sleep"] is True
    assert night["night_rule"] == "noon-split/v1"
    assert night["efficiency_pct"] == pytest.approx(378 / 430 * 100)
    assert night["tz_source"] == "user_setting"
    # startTime 2019-11-02 00:09:30 local Berlin (UTC+1)
    assert night["start_utc"].isoformat() == "2019-11-01T23:09:30+00:00"

    st = read(settings.lake, "sleep_stage", ["u1"])
    assert set(st["stage"].unique()) <= {"awake", "light", "deep", "rem", "asleep"}
    one = st.filter(pl.col("episode_id") == night["record_id"]).with_columns(m=_minutes())
    by_stage = dict(one.group_by("stage").agg(pl.col("m").sum()).iter_rows())
    # shortData wakes overlaid: wake minutes equal Fitbit's summary (52), deep and rem exact
    assert by_stage["awake"] == pytest.approx(52, abs=1)
    assert by_stage["deep"] == 36
    assert by_stage["rem"] == 83
    # stages never overlap within an episode
    one = one.sort("start_utc")
    assert (one["start_utc"].shift(-1).drop_nulls() >= one["end_utc"].head(-1)).all()
    # every stage belongs to an episode of the file
    assert st["episode_id"].is_in(ep["record_id"].implode()).all()

    # the same content under another name (different bytes, new sha) adds nothing
    copy = tmp_path / "again" / "sleep.json"
    copy.parent.mkdir()
    copy.write_text(src.read_text() + "\n")
    rep2 = ingest_paths([copy], "u1", settings)
    assert rep2.files[0].status == "ingested"
    assert all(s.inserted == 0 for s in rep2.tables.values())
    assert read(settings.lake, "sleep_episode", ["u1"]).height == 150
    assert ingest_paths([src], "u1", settings).files[0].status == "already_seen"


@pytest.mark.realdata
def test_night_assignment_agrees_with_date_of_sleep():
    user = UserSettings("u1", tz="Europe/Oslo")
    total = agree = 0
    for p in ("p02", "p04"):
        path = shared("pmdata", p, "fitbit", "sleep.json")
        raw = {str(e["logId"]): e["dateOfSleep"] for e in json.loads(path.read_text())}
        out = dict(fitbit_json.read(FileContext(path, path.name, "sha", user)))
        ep = out["sleep_episode"].with_columns(
            dos=pl.col("vendor_episode_id").replace_strict(raw).str.to_date()
        )
        total += ep.height
        agree += int((ep["dos"] == ep["sleep_date"]).sum())
    assert total == 153 + 182
    assert agree / total >= 0.95


@pytest.mark.realdata
def test_sleep_score_exercise_and_steps(settings):
    base = shared("pmdata")
    rep = ingest_paths(
        [
            base / "p01" / "fitbit" / "sleep_score.csv",
            base / "p01" / "fitbit" / "exercise.json",
            base / "p01" / "fitbit" / "sedentary_minutes.json",
            base / "p03" / "fitbit" / "steps.json",
        ],
        "u1",
        settings,
    )
    status = {Path(f.file).name: f.status for f in rep.files}
    assert status == {
        "sleep_score.csv": "ingested",
        "exercise.json": "ingested",
        "sedentary_minutes.json": "skipped",
        "steps.json": "ingested",
    }
    vs = read(settings.lake, "vendor_score", ["u1"])
    row = vs.filter((pl.col("date") == date(2019, 11, 2)) & (pl.col("name") == "overall_score"))
    assert row["value"].to_list() == [79.0]
    assert set(vs["name"].unique()) >= {"overall_score", "deep_sleep_in_minutes", "restlessness"}

    wo = read(settings.lake, "workout", ["u1"]).sort("start_utc")
    assert wo.height == 190
    first = wo.row(0, named=True)
    assert first["activity"] == "walk"
    assert first["duration_min"] == pytest.approx(1331000 / 60000)
    assert (first["avg_hr"], first["energy_kcal"]) == (94.0, 192.0)
    assert first["start_utc"].isoformat() == "2019-11-01T13:56:32+00:00"

    steps = read(settings.lake, "steps", ["u1"])
    assert steps.height == 53042
    minute = steps.filter(pl.col("start_utc") == pl.datetime(2019, 11, 1, 2, 13, time_zone="UTC"))
    assert minute["steps"].to_list() == [6.0]
    assert (steps.select(_minutes())["end_utc"] == 1).all()


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=2))
    return path


def test_takeout_style_files(settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(
        inbox / "heart_rate-2018-04-10.json",
        [
            {"dateTime": "04/10/18 10:41:34", "value": {"bpm": 79, "confidence": 2}},
            {"dateTime": "04/10/18 10:41:39", "value": {"bpm": 81, "confidence": 3}},
        ],
    )
    _write(
        inbox / "resting_heart_rate-2018-04-10.json",
        [
            {
                "dateTime": "04/10/18 00:00:00",
                "value": {"date": "04/10/18", "value": 58.5, "error": 5.1},
            },
            {"dateTime": "04/11/18 00:00:00", "value": {"date": None, "value": 0.0, "error": 0.0}},
        ],
    )
    _write(
        inbox / "sleep-2018-04-10.json",
        [
            {
                "logId": 1,
                "dateOfSleep": "2018-04-11",
                "startTime": "2018-04-10T23:00:00.000",
                "endTime": "2018-04-11T01:00:00.000",
                "duration": 7_200_000,
                "minutesToFallAsleep": 0,
                "minutesAsleep": 100,
                "minutesAwake": 20,
                "minutesAfterWakeup": 0,
                "timeInBed": 120,
                "efficiency": 83,
                "type": "classic",
                "mainSleep": True,
                "levels": {
                    "data": [
                        {"dateTime": "2018-04-10T23:00:00.000", "level": "asleep", "seconds": 3600},
                        {
                            "dateTime": "2018-04-11T00:00:00.000",
                            "level": "restless",
                            "seconds": 600,
                        },
                        {"dateTime": "2018-04-11T00:10:00.000", "level": "awake", "seconds": 600},
                        {"dateTime": "2018-04-11T00:20:00.000", "level": "asleep", "seconds": 2400},
                    ],
                    "summary": {},
                },
            }
        ],
    )
    rep = ingest_paths([inbox], "u2", settings)
    assert {f.status for f in rep.files} == {"ingested"}, [f.error for f in rep.files]
    hr = read(settings.lake, "heart_rate", ["u2"]).sort("start_utc")
    # heart_rate is UTC in the export, unlike everything else
    assert hr["start_utc"][0].isoformat() == "2018-04-10T10:41:34+00:00"
    assert hr["bpm"].to_list() == [79.0, 81.0]
    vit = read(settings.lake, "vitals", ["u2"])
    assert vit.select("metric", "value").rows() == [("resting_hr", 58.5)]
    ep = read(settings.lake, "sleep_episode", ["u2"]).row(0, named=True)
    assert ep["start_utc"].isoformat() == "2018-04-11T03:00:00+00:00"  # New York, UTC-4
    assert ep["sleep_date"] == date(2018, 4, 11)
    assert ep["awakenings"] == 1  # restless + awake = one 20-min wake bout
    st = read(settings.lake, "sleep_stage", ["u2"]).sort("start_utc")
    assert st["stage"].to_list() == ["asleep", "awake", "asleep"]


def test_sniff_by_content(tmp_path):
    steps_like = tmp_path / "sedentary_minutes.json"
    _write(steps_like, [{"dateTime": "2019-11-01 00:00:00", "value": "636"}])
    steps = tmp_path / "steps-2019-11-01.json"
    shutil.copy(steps_like, steps)
    renamed_sleep = tmp_path / "whatever.json"
    _write(renamed_sleep, [{"logId": 5, "dateOfSleep": "2019-11-01", "startTime": "x"}])
    assert not fitbit_json.sniff(steps_like, steps_like.read_bytes())
    assert fitbit_json.kind(steps, steps.read_bytes()) == "steps"
    assert fitbit_json.kind(renamed_sleep, renamed_sleep.read_bytes()) == "sleep"
    assert not fitbit_json.sniff(tmp_path / "x.json", b'{"data": []}')
