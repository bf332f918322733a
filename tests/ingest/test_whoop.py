"""WHOOP reader: the four synthetic export CSVs against the truth, and hand-written edge cases."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tunewell.ingest.formats import whoop
from tunewell.ingest.registry import detect, read_head
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import store
from tunewell.settings import Settings, UserSettings
from tunewell.synth.people import simulate
from tunewell.synth.whoop import CYCLES_HEADER, JOURNAL_HEADER, SLEEPS_HEADER, write_whoop

USER = "p001"


@pytest.fixture(scope="module")
def pop():
    return simulate(n_users=1, days=21, seed=5)


@pytest.fixture
def wsettings(lake: Path) -> Settings:
    return Settings(lake=lake, users={USER: UserSettings(USER, tz="Europe/Berlin")})


def test_export_matches_truth_and_reingest_is_a_no_op(pop, tmp_path, wsettings):
    paths = write_whoop(pop, USER, tmp_path / "in")
    assert all(detect(p, read_head(p)) is whoop for p in paths)
    rep = ingest_paths(paths, USER, wsettings)
    assert [f.status for f in rep.files] == ["ingested"] * 4, [f.error for f in rep.files]
    truth = pop.nights.filter(pl.col("user_id") == USER).sort("bed_utc")
    lake = wsettings.lake

    epi = store.read(lake, "sleep_episode").sort("start_utc")
    assert epi["start_utc"].to_list() == truth["bed_utc"].to_list()
    assert epi["end_utc"].to_list() == truth["out_utc"].to_list()
    assert epi["sleep_date"].to_list() == truth["sleep_date"].to_list()
    assert epi["is_main_sleep"].all() and set(epi["tz_source"]) == {"record"}
    assert (epi["tst_min"] - truth["tst_min"]).abs().max() <= 0.5

    hrv = store.read(lake, "hrv").sort("start_utc")
    assert set(hrv["window"]) == {"last_sws"} and set(hrv["metric"]) == {"rmssd"}
    assert (hrv["value_ms"] - truth["rmssd_ms"].round(0)).abs().max() == 0

    vitals = store.read(lake, "vitals")
    assert set(vitals["metric"]) == {"resting_hr", "respiration_rate", "skin_temp", "spo2"}
    rhr = vitals.filter(pl.col("metric") == "resting_hr").sort("start_utc")
    assert rhr["value"].to_list() == truth["rhr_bpm"].round(0).to_list()
    for metric, col, digits in (
        ("respiration_rate", "resp_rate", 1),
        ("skin_temp", "skin_temp_c", 2),
        ("spo2", "spo2_pct", 2),
    ):
        got = vitals.filter(pl.col("metric") == metric).sort("start_utc")
        # stamped over the sleep (onset .. wake), so features give it to that night
        assert got["start_utc"].to_list() == truth["bed_utc"].to_list(), metric
        assert (got["value"] - truth[col]).abs().max() <= 0.5 * 10**-digits + 1e-9, metric

    scores = store.read(lake, "vendor_score")
    rec = scores.filter(pl.col("name") == "recovery").sort("date")
    assert rec["date"].to_list() == truth["sleep_date"].to_list()
    strain = scores.filter(pl.col("name") == "day_strain")
    assert strain.height == truth.height - 1  # the open cycle has no final strain yet
    assert {"sleep_performance", "deep_sleep_min", "sleep_debt_min"} <= set(scores["name"])

    wk = store.read(lake, "workout")
    tw = pop.workouts.filter(
        (pl.col("user_id") == USER) & (pl.col("start_utc") >= truth["bed_utc"].min())
    )
    assert wk.sort("start_utc")["start_utc"].to_list() == tw["start_utc"].to_list()
    assert set(wk["activity"]) <= {"running", "cycling", "walking", "weightlifting"}
    assert wk["vendor_load"].min() >= 7

    journal = store.read(lake, "self_report")
    assert journal.height == 3 * truth.height
    assert set(journal["item"]) == {
        "did_you_have_any_alcoholic_drinks",
        "did_you_view_a_phone_or_other_screen_device_while_in_bed",
        "did_you_have_any_caffeine",
    }
    assert set(journal["value"]) <= {0.0, 1.0}

    again = ingest_paths(paths, USER, wsettings)
    assert {f.status for f in again.files} == {"already_seen"}
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in paths:  # same content with one changed byte → new file hash, same records
        (copy / p.name).write_text(p.read_text() + "\n")
    rep2 = ingest_paths([copy], USER, wsettings)
    assert sum(s.inserted for s in rep2.tables.values()) == 0


def _csv(header: list[str], rows: list[dict]) -> str:
    lines = [",".join(header)]
    lines += [",".join(str(r.get(h, "")) for h in header) for r in rows]
    return "\n".join(lines) + "\n"


def test_open_cycle_half_hour_zone_and_nap(tmp_path, settings):
    inbox = tmp_path / "export"
    inbox.mkdir()
    cyc = {"Cycle timezone": "UTC+05:30"}
    closed = cyc | {
        "Cycle start time": "2025-01-09 23:00:00",
        "Cycle end time": "2025-01-10 22:30:00",
        "Recovery score %": 55,
        "Heart rate variability (ms)": 48,
        "Day Strain": 11.2,
        "Average HR (bpm)": 70,
        "Max HR (bpm)": 160,
        "Sleep onset": "2025-01-09 23:00:00",
        "Wake onset": "2025-01-10 06:30:00",
        "In bed duration (min)": 450,
        "Asleep duration (min)": 410,
        "Resting heart rate (bpm)": 52,
    }
    open_ = cyc | {
        "Cycle start time": "2025-01-10 22:30:00",
        "Recovery score %": 70,
        "Heart rate variability (ms)": 55,
        "Sleep onset": "2025-01-10 22:30:00",
        "Wake onset": "2025-01-11 06:00:00",
        "In bed duration (min)": 450,
        "Asleep duration (min)": 420,
        "Blood oxygen %": 250,
    }
    (inbox / "physiological_cycles.csv").write_text(_csv(CYCLES_HEADER, [closed, open_]))
    nap = {
        "Cycle start time": "2025-01-09 23:00:00",
        "Cycle end time": "2025-01-10 22:30:00",
        "Sleep onset": "2025-01-10 14:00:00",
        "Wake onset": "2025-01-10 14:40:00",
        "In bed duration (min)": 40,
        "Asleep duration (min)": 35,
        "Nap": "true",
    }
    main = {
        k: closed[k]
        for k in (
            "Cycle start time",
            "Cycle end time",
            "Sleep onset",
            "Wake onset",
            "In bed duration (min)",
            "Asleep duration (min)",
        )
    } | {"Nap": "false"}
    (inbox / "sleeps.csv").write_text(_csv(SLEEPS_HEADER, [cyc | main, cyc | nap]))
    rep = ingest_paths([inbox], "u1", settings)
    assert {f.status for f in rep.files} == {"ingested"}, [f.error for f in rep.files]
    lake = settings.lake

    epi = store.read(lake, "sleep_episode").sort("start_utc")
    assert [str(t) for t in epi["start_utc"]] == [
        "2025-01-09 17:30:00+00:00",
        "2025-01-10 08:30:00+00:00",
        "2025-01-10 17:00:00+00:00",
    ]
    assert epi["is_main_sleep"].to_list() == [True, False, True]
    assert set(epi["utc_offset_min"]) == {330}
    scores = store.read(lake, "vendor_score")
    rec = scores.filter(pl.col("name") == "recovery").sort("date")
    assert [str(d) for d in rec["date"]] == ["2025-01-10", "2025-01-11"]
    assert scores.filter(pl.col("name") == "day_strain")["value"].to_list() == [11.2]
    assert store.read(lake, "heart_rate").height == 2  # only the closed cycle's daily HR
    assert store.read(lake, "hrv")["value_ms"].sort().to_list() == [48.0, 55.0]
    assert rep.files[0].dropped_invalid == {"vitals": 1}  # SpO2 250 fails validation


def test_journal_notes_and_unknown_zone(tmp_path, settings):
    rows = [
        {
            "Cycle start time": "2025-02-01 00:30:00",
            "Cycle end time": "2025-02-01 23:50:00",
            "Cycle timezone": "UTCZ",
            "Question text": "Hydrated sufficiently?",
            "Answered yes": "true",
            "Notes": "3 litres",
        },
        {
            "Cycle start time": "2025-02-01 00:30:00",
            "Cycle end time": "2025-02-01 23:50:00",
            "Cycle timezone": "UTCZ",
            "Question text": "Read (non-screened device) while in bed?",
            "Answered yes": "false",
            "Notes": "",
        },
    ]
    f = tmp_path / "journal_entries.csv"
    f.write_text(_csv(JOURNAL_HEADER, rows))
    rep = ingest_paths([f], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    sr = store.read(settings.lake, "self_report").sort("item")
    assert sr["item"].to_list() == [
        "hydrated_sufficiently",
        "read_non_screened_device_while_in_bed",
    ]
    assert sr["value"].to_list() == [1.0, 0.0]
    assert sr["text"].to_list() == ["3 litres", None]
    assert [str(d) for d in sr["date"]] == ["2025-02-01", "2025-02-01"]
    assert set(sr["utc_offset_min"]) == {0}

    bad = tmp_path / "bad" / "journal_entries.csv"
    bad.parent.mkdir()
    bad.write_text(_csv(JOURNAL_HEADER, [rows[0] | {"Cycle timezone": "Mars/Olympus"}]))
    rep = ingest_paths([bad], "u1", settings)
    assert rep.files[0].status == "quarantined"
    assert "time zone" in rep.files[0].error


def test_offset_parsing():
    zones = pl.Series(["UTC-04:00", "UTC+05:30", "UTCZ", "UTC", "UTC+14:00", "EST"])
    got = pl.select(whoop.offset_minutes(pl.lit(zones))).to_series().to_list()
    assert got == [-240, 330, 0, 0, 840, None]


def test_columns_in_another_order_and_some_missing_still_read(tmp_path, settings):
    # A later app version: zone column first, a new column, no SpO2 or skin temperature.
    header = [
        "Cycle timezone",
        "Cycle start time",
        "Cycle end time",
        "Recovery score %",
        "Resting heart rate (bpm)",
        "Heart rate variability (ms)",
        "Sleep onset",
        "Wake onset",
        "Asleep duration (min)",
        "In bed duration (min)",
        "Some new metric",
    ]
    row = [
        "UTC-04:00",
        "2025-03-01 22:10:00",
        "2025-03-02 21:50:00",
        "61",
        "52",
        "63",
        "2025-03-01 22:30:00",
        "2025-03-02 06:40:00",
        "455",
        "490",
        "7",
    ]
    f = tmp_path / "physiological_cycles.csv"
    f.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    assert detect(f, read_head(f)) is whoop
    rep = ingest_paths([f], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    ep = store.read(settings.lake, "sleep_episode").row(0, named=True)
    assert str(ep["sleep_date"]) == "2025-03-02" and ep["tst_min"] == 455
    vit = store.read(settings.lake, "vitals")
    assert vit["metric"].to_list() == ["resting_hr"]
