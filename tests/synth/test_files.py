"""Planted effects recovered from the written vendor files themselves (decoded here directly)."""

from __future__ import annotations

import io
import itertools
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import fitparse
import numpy as np
import polars as pl
import pytest
from garmin_fit_sdk import Decoder, Stream
from lxml import etree

from tunewell.synth.apple_health import write_apple
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    pop = simulate()
    inbox = tmp_path_factory.mktemp("inbox")
    users = write_inbox(pop, inbox)
    return pop, inbox, users


def _decode(path: Path) -> dict:
    msgs, errors = Decoder(Stream.from_file(str(path))).read()
    assert not errors, (path, errors)
    return msgs


def _fits(inbox: Path, user: str, kind: str) -> list[dict]:
    return [_decode(p) for p in sorted((inbox / user / "garmin").glob(f"*_{kind}.fit"))]


def _local(msg: dict) -> datetime:
    corr = msg["timestamp_correlation_mesgs"][0]
    off = corr["local_timestamp"] - int(corr["timestamp"].timestamp()) + 631065600
    return corr["timestamp"] + timedelta(seconds=off)


def _offset_s(msg: dict) -> int:
    corr = msg["timestamp_correlation_mesgs"][0]
    return corr["local_timestamp"] + 631065600 - int(corr["timestamp"].timestamp())


def _apple_root(inbox: Path, user: str):
    with zipfile.ZipFile(inbox / user / "apple" / "export.zip") as zf:
        data = zf.read("apple_health_export/export.xml")
    return etree.parse(io.BytesIO(data)).getroot()


def _apple_time(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S %z")


def test_layout_and_settings(written):
    _, inbox, users = written
    assert sorted(users) == ["p001", "p002", "p003"]
    assert (inbox / "p001" / "garmin").is_dir() and (inbox / "p001" / "apple").is_dir()
    assert not (inbox / "p002" / "garmin").exists()
    assert not (inbox / "p003" / "apple").exists()
    assert users["p001"].tz == "Europe/Berlin" and len(users["p001"].tz_history) == 2


def test_same_seed_same_bytes(tmp_path):
    pop = simulate(n_users=1, days=5)
    a = write_garmin(pop, pop.people[0], tmp_path / "a")
    b = write_garmin(pop, pop.people[0], tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    za = write_apple(pop, pop.people[0], tmp_path / "a").read_bytes()
    zb = write_apple(pop, pop.people[0], tmp_path / "b").read_bytes()
    assert za == zb


def test_fitparse_also_reads_every_kind(written):
    _, inbox, _ = written
    for kind in ("SLEEP_DATA", "HRV_STATUS", "WELLNESS", "ACTIVITY"):
        path = next((inbox / "p003" / "garmin").glob(f"*_{kind}.fit"))
        ff = fitparse.FitFile(str(path))
        ff.parse()
        assert len(ff.messages) > 2


def test_hard_day_lowers_next_night_hrv_from_fit(written):
    _, inbox, _ = written
    diffs = []
    for user in ("p001", "p003"):
        hard_days = set()
        for m in _fits(inbox, user, "ACTIVITY"):
            act = m["activity_mesgs"][0]
            local_end = datetime(1989, 12, 31) + timedelta(seconds=act["local_timestamp"])
            if m["session_mesgs"][0]["workout_rpe"] >= 70:
                hard_days.add(local_end.date())
        ln_hard, ln_rest = [], []
        for m in _fits(inbox, user, "HRV_STATUS"):
            night = _local(m).date()
            val = np.log(m["hrv_status_summary_mesgs"][0]["last_night_average"])
            (ln_hard if night - timedelta(days=1) in hard_days else ln_rest).append(val)
        assert len(ln_hard) >= 6 and len(ln_rest) >= 10
        diffs.append(np.mean(ln_rest) - np.mean(ln_hard))
    assert min(diffs) > 0.05, diffs


def test_social_jetlag_from_apple_sleep(written):
    _, inbox, _ = written
    root = _apple_root(inbox, "p002")
    mids = {True: [], False: []}
    for r in root.iter("Record"):
        if r.get("value") != "HKCategoryValueSleepAnalysisInBed":
            continue
        s, e = _apple_time(r.get("startDate")), _apple_time(r.get("endDate"))
        mid = s + (e - s) / 2
        local_mid = mid.astimezone(e.tzinfo)
        hours = (local_mid - local_mid.replace(hour=12, minute=0, second=0)).total_seconds() / 3600
        hours = hours % 24 - 12  # hours after midnight, negative before
        mids[e.weekday() >= 5].append(hours)
    assert len(mids[True]) >= 8 and len(mids[False]) >= 20
    assert np.mean(mids[True]) - np.mean(mids[False]) > 0.5


def test_dst_offsets_in_apple_and_fit(written):
    _, inbox, _ = written
    london = ZoneInfo("Europe/London")
    seen = set()
    for r in _apple_root(inbox, "p002").iter("Record"):
        t = _apple_time(r.get("startDate"))
        assert t.utcoffset() == t.astimezone(UTC).astimezone(london).utcoffset()
        if t.date().isoformat() == "2026-03-29":
            seen.add(t.utcoffset().total_seconds())
    assert seen == {0.0, 3600.0}

    berlin_day = {}
    for m in _fits(inbox, "p003", "WELLNESS"):
        info = m["monitoring_info_mesgs"][0]
        off = info["local_timestamp"] + 631065600 - int(info["timestamp"].timestamp())
        local_midnight = info["timestamp"] + timedelta(seconds=off)
        hr_msgs = [x for x in m["monitoring_mesgs"] if "heart_rate" in x]
        berlin_day[local_midnight.date().isoformat()] = (off, len(hr_msgs))
    assert berlin_day["2026-03-28"] == (3600, 1440)
    assert berlin_day["2026-03-29"] == (3600, 1380)  # 23-hour day
    assert berlin_day["2026-03-30"] == (7200, 1440)


def test_travel_week_shifts_utc_not_local_bedtime(written):
    _, inbox, _ = written
    rows = []
    for m in _fits(inbox, "p001", "SLEEP_DATA"):
        start = m["event_mesgs"][0]["timestamp"]
        off = _offset_s(m)
        local = start + timedelta(seconds=off)
        rows.append((start, off, (local.hour + local.minute / 60 + 12) % 24 - 12))
    ny = [r for r in rows if r[1] == -4 * 3600]
    home = [r for r in rows if r[1] in (3600, 7200)]
    assert 5 <= len(ny) <= 7 and len(home) >= 25
    utc_h = lambda rs: np.mean([(r[0].hour + 12) % 24 for r in rs])  # noqa: E731
    assert utc_h(ny) - utc_h(home) > 3  # in UTC the nights move by hours
    assert all(-5 < r[2] < 4 for r in rows)  # local bedtimes stay evening/night


def test_sleep_levels_inside_episode_and_ordered(written):
    pop, inbox, _ = written
    for m in _fits(inbox, "p003", "SLEEP_DATA"):
        start, stop = (e["timestamp"] for e in m["event_mesgs"])
        ts = [x["timestamp"] for x in m["sleep_level_mesgs"]]
        assert ts[0] == start and ts[-1] < stop
        assert all(a < b for a, b in itertools.pairwise(ts))
        assert {x["sleep_level"] for x in m["sleep_level_mesgs"]} <= {
            "awake",
            "light",
            "deep",
            "rem",
        }
    root = _apple_root(inbox, "p002")
    beds = []
    stages = []
    for r in root.iter("Record"):
        if r.get("type") != "HKCategoryTypeIdentifierSleepAnalysis":
            continue
        span = (_apple_time(r.get("startDate")), _apple_time(r.get("endDate")))
        (beds if r.get("value").endswith("InBed") else stages).append(span)
    beds.sort()
    for s, e in stages:
        assert any(b0 <= s and e <= b1 for b0, b1 in beds)
    assert len(beds) == pop.nights.filter(pop.nights["user_id"] == "p002").height


def test_monitoring_timestamp16_and_cumulative_steps_match_truth(written):
    pop, inbox, _ = written
    truth = pop.minutes.filter(pl.col("user_id") == "p003")
    for m in _fits(inbox, "p003", "WELLNESS")[10:12]:
        last_full = int(m["monitoring_info_mesgs"][0]["timestamp"].timestamp())
        hr_t, hr_v, cum = [], [], {}
        for x in m["monitoring_mesgs"]:
            if "timestamp" in x:
                last_full = int(x["timestamp"].timestamp())
                if "steps" in x:
                    cum[x["activity_type"]] = x["steps"]
            if "heart_rate" in x:
                if "timestamp_16" in x:
                    base = last_full - 631065600
                    t = base + ((x["timestamp_16"] - (base & 0xFFFF)) & 0xFFFF) + 631065600
                else:
                    t = last_full
                hr_t.append(t)
                hr_v.append(x["heart_rate"])
        day = truth.filter(pl.col("start_utc").dt.epoch("s").is_between(min(hr_t), max(hr_t)))
        assert day["start_utc"].dt.epoch("s").to_list() == hr_t
        assert np.allclose(day["hr"].to_numpy(), hr_v, atol=0.51)
        assert sum(cum.values()) == day["steps"].sum()


def test_activity_rr_and_session(written):
    _, inbox, _ = written
    m = _fits(inbox, "p003", "ACTIVITY")[0]
    rr = [v for h in m["hrv_mesgs"] for v in h["time"] if v is not None]
    sess = m["session_mesgs"][0]
    mean_hr = 60 / np.median(rr)
    assert abs(mean_hr - sess["avg_heart_rate"]) < 15
    assert sum(rr) == pytest.approx(sess["total_elapsed_time"], rel=0.03)
    assert all(0.25 <= v <= 2.5 for v in rr)
