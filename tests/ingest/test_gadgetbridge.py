"""Gadgetbridge reader: a synthetic SQLite export against the truth, and hand-built edge cases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from tunewell.ingest.formats import gadgetbridge
from tunewell.ingest.registry import detect, read_head
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import store
from tunewell.settings import Settings, UserSettings
from tunewell.synth.gadgetbridge import write_gadgetbridge
from tunewell.synth.people import simulate

USER = "p001"


@pytest.fixture(scope="module")
def pop():
    return simulate(n_users=1, days=7, seed=3)


def test_export_matches_truth_and_reingest_is_a_no_op(pop, tmp_path, lake):
    st = Settings(lake=lake, users={USER: UserSettings(USER, tz="Europe/Berlin")})
    paths = write_gadgetbridge(pop, USER, tmp_path / "in")
    assert detect(paths[0], read_head(paths[0])) is gadgetbridge
    rep = ingest_paths(paths, USER, st)
    assert rep.files[0].status == "ingested", rep.files[0].error
    truth = pop.minutes.filter(pl.col("user_id") == USER)

    steps = store.read(lake, "steps")
    assert steps.height == truth.height
    assert steps["steps"].sum() == truth["steps"].sum()
    assert set(steps["device"]) == {"Mi Band 3", "Amazfit Bip"}
    assert ((steps["end_utc"] - steps["start_utc"]).dt.total_seconds() == 60).all()
    assert set(steps["tz_source"]) == {"user_setting"}

    hr = store.read(lake, "heart_rate")
    assert 0.9 * truth.height < hr.height < truth.height  # 255/0 "no reading" rows dropped
    assert hr["bpm"].max() < 255 and hr["bpm"].min() > 0
    joined = hr.join(truth, on="start_utc")
    assert joined.height == hr.height
    assert (joined["bpm"] - joined["hr"]).abs().max() <= 0.5

    again = ingest_paths(paths, USER, st)
    assert again.files[0].status == "already_seen"
    copy = tmp_path / "copy" / "Gadgetbridge"
    copy.parent.mkdir()
    con = sqlite3.connect(paths[0])
    con.execute(f"VACUUM INTO '{copy}'")  # different bytes, same samples
    con.close()
    rep2 = ingest_paths([copy], USER, st)
    assert rep2.files[0].status == "ingested"
    assert sum(s.inserted for s in rep2.tables.values()) == 0


def _db(path: Path, sample_sql: str, rows: list[tuple], device: bool = True) -> Path:
    con = sqlite3.connect(path)
    con.execute(sample_sql)
    if device:
        con.execute('CREATE TABLE "DEVICE" (_id INTEGER PRIMARY KEY, NAME TEXT, MODEL TEXT)')
        con.execute("INSERT INTO DEVICE VALUES (7, 'Pebble Time', NULL)")
    table = sample_sql.split('"')[1]
    con.executemany(f'INSERT INTO "{table}" VALUES ({",".join("?" * len(rows[0]))})', rows)
    con.commit()
    con.close()
    return path


def test_heart_rate_sentinels_and_other_families(tmp_path, settings):
    t0 = 1_700_000_000
    pebble = _db(
        tmp_path / "Gadgetbridge",
        'CREATE TABLE "PEBBLE_HEALTH_ACTIVITY_SAMPLE" (TIMESTAMP INTEGER, DEVICE_ID INTEGER, '
        "USER_ID INTEGER, RAW_INTENSITY INTEGER, STEPS INTEGER, RAW_KIND INTEGER, "
        "HEART_RATE INTEGER)",
        [
            (t0, 7, 1, 10, 12, 1, 255),
            (t0 + 60, 7, 1, 10, 30, 1, 0),
            (t0 + 120, 7, 1, 10, 0, 1, 61),
            (t0 + 180, 7, 1, 10, -1, 1, -1),
            (t0 + 240, 8, 1, 10, 5, 1, 70),
        ],
    )
    rep = ingest_paths([pebble], "u2", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    steps = store.read(settings.lake, "steps").sort("start_utc")
    assert steps["steps"].to_list() == [12.0, 30.0, 0.0, 5.0]
    assert steps["device"].to_list() == ["Pebble Time"] * 3 + ["gadgetbridge_device_8"]
    hr = store.read(settings.lake, "heart_rate").sort("start_utc")
    assert hr["bpm"].to_list() == [61.0, 70.0]
    assert hr["end_utc"].is_null().all()


def test_sqlite_without_sample_tables_is_not_claimed(tmp_path):
    f = tmp_path / "other.db"
    con = sqlite3.connect(f)
    con.execute("CREATE TABLE notes (x TEXT)")
    con.commit()
    con.close()
    assert not gadgetbridge.sniff(f, read_head(f))


def test_table_without_heart_rate_column(tmp_path, settings):
    db = _db(
        tmp_path / "gb.db",
        'CREATE TABLE "XWATCH_ACTIVITY_SAMPLE" (TIMESTAMP INTEGER, DEVICE_ID INTEGER, '
        "USER_ID INTEGER, STEPS INTEGER)",
        [(1_700_000_000, 7, 1, 44)],
        device=False,
    )
    rep = ingest_paths([db], "u1", settings)
    assert rep.files[0].rows == {"steps": 1}
