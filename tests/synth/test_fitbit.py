"""Fitbit account-export JSON written from the simulation, checked by reading the JSON directly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl
import pytest

from tunewell.synth.fitbit import write_fitbit
from tunewell.synth.people import simulate


@pytest.fixture(scope="module")
def fitbit(tmp_path_factory):
    pop = simulate(n_users=2)
    out = tmp_path_factory.mktemp("fitbit")
    paths = write_fitbit(pop, pop.people[1], out)  # p002, Europe/London
    return pop, out, paths


def _iso(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.000")


def test_deterministic_bytes(fitbit, tmp_path):
    pop, _, paths = fitbit
    again = write_fitbit(pop, pop.people[1], tmp_path)
    assert [p.name for p in again] == [p.name for p in paths]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, paths, strict=True))


def test_sleep_logs_contiguous_and_match_truth(fitbit):
    pop, out, _ = fitbit
    logs = [log for p in sorted(out.glob("sleep-*.json")) for log in json.loads(p.read_text())]
    truth = pop.nights.filter(pl.col("user_id") == "p002")
    assert len(logs) == truth.height
    tst = dict(zip(truth["sleep_date"].cast(pl.String), truth["tst_min"], strict=True))
    for log in logs:
        start, end = _iso(log["startTime"]), _iso(log["endTime"])
        data = log["levels"]["data"]
        t = start
        for run in data:
            assert _iso(run["dateTime"]) == t
            t += timedelta(seconds=run["seconds"])
        assert t == end
        assert sum(r["seconds"] for r in data) * 1000 == log["duration"]
        for w in log["levels"]["shortData"]:
            assert start < _iso(w["dateTime"]) and w["seconds"] < 180
        assert log["dateOfSleep"] == end.date().isoformat()
        assert abs(log["minutesAsleep"] - tst[log["dateOfSleep"]]) <= 1.5


def test_steps_local_clock_skips_the_dst_hour(fitbit):
    _, out, _ = fitbit
    items = [x for p in sorted(out.glob("steps-*.json")) for x in json.loads(p.read_text())]
    day = [x["dateTime"] for x in items if x["dateTime"].startswith("03/29/26")]
    assert len(day) == 23 * 60
    assert not any(d.startswith("03/29/26 01:") for d in day)
    assert all(isinstance(x["value"], str) for x in items[:100])


def test_heart_rate_files_are_utc_days(fitbit):
    pop, out, _ = fitbit
    items = json.loads((out / "heart_rate-2026-03-30.json").read_text())
    assert all(x["dateTime"].startswith("03/30/26") for x in items)
    assert len(items) == 4 * 1440
    truth = pop.minutes.filter(
        (pl.col("user_id") == "p002")
        & (pl.col("start_utc").dt.date().cast(pl.String) == "2026-03-30")
    )
    mean_file = sum(x["value"]["bpm"] for x in items) / len(items)
    assert abs(mean_file - truth["hr"].mean()) < 1.0
