"""Time correctness across readers: DST nights, flights, naps and split nights.

Every case writes a small file in a real vendor format, ingests it through the runner and reads
the lake back, so what is checked is what an analyst would see: durations in real minutes,
``sleep_date`` = local wake-up date, offsets per record, main sleep by the noon split.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from garmin_fit_sdk import Encoder, Profile

from tunewell.features.build import build_nightly_features
from tunewell.ingest.runner import ingest_paths
from tunewell.ingest.timeparse import local_to_utc, wall_to_utc, zone_on
from tunewell.lake import store
from tunewell.lake.merge import resolve_sleep
from tunewell.lake.sleep_rules import NIGHT_RULE, assign_nights
from tunewell.settings import Settings, UserSettings, ZonePeriod

SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
SV = "HKCategoryValueSleepAnalysis"
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


@pytest.fixture
def tsettings(lake: Path) -> Settings:
    return Settings(
        lake=lake,
        inbox=lake.parent / "inbox",
        users={
            "ber": UserSettings("ber", tz=BERLIN),
            "nyc": UserSettings("nyc", tz=NEW_YORK),
            # moved from New York to Berlin; readers without offsets follow this history
            "mover": UserSettings(
                "mover", tz=NEW_YORK, tz_history=(ZonePeriod(date(2026, 5, 11), BERLIN),)
            ),
        },
    )


def ingest(path: Path, user: str, st: Settings) -> dict[str, pl.DataFrame]:
    rep = ingest_paths([path], user, st)
    assert [f.status for f in rep.files] == ["ingested"], [f.error for f in rep.files]
    out = {}
    for t in ("sleep_episode", "sleep_stage"):
        try:
            out[t] = store.read(st.lake, t, [user]).sort("start_utc")
        except FileNotFoundError:
            out[t] = pl.DataFrame()
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60


def check_rule(ep: pl.DataFrame) -> None:
    assert ep.height and (ep["night_rule"] == NIGHT_RULE).all()


# --------------------------------------------------------------------------- vendor file writers


def apple_export(tmp_path: Path, records: list[tuple[str, str, str]]) -> Path:
    """export.xml with sleep records (stage, start, end); times carry their own offset suffix."""
    body = "".join(
        f'<Record type="{SLEEP}" sourceName="Watch" sourceVersion="10" '
        f'device="&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, hardware:Watch7,1&gt;" '
        f'creationDate="{e}" startDate="{s}" endDate="{e}" value="{SV}{v}"/>\n'
        for v, s, e in records
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
        '<ExportDate value="2026-12-01 09:00:00 +0100"/>\n' + body + "</HealthData>\n"
    )
    p = tmp_path / "export.xml"
    p.write_text(xml)
    return p


def oura_json(tmp_path: Path, sleeps: list[tuple[str, str, str, int]]) -> Path:
    """Oura API v2 sleep documents (id, bedtime_start, bedtime_end, light 5-min epochs)."""
    docs = [
        {
            "id": sid,
            "day": end[:10],
            "type": "long_sleep",
            "bedtime_start": start,
            "bedtime_end": end,
            "time_in_bed": n * 300,
            "total_sleep_duration": n * 300,
            "sleep_phase_5_min": "2" * n,
        }
        for sid, start, end, n in sleeps
    ]
    p = tmp_path / "oura_sleep.json"
    p.write_text(json.dumps({"data": docs, "next_token": None}))
    return p


def fitbit_sleep(tmp_path: Path, logs: list[tuple[int, str, str]]) -> Path:
    """Fitbit sleep logs (logId, local startTime, local endTime), one 'asleep' level each."""
    entries = []
    for log_id, start, end in logs:
        t0, t1 = datetime.fromisoformat(start), datetime.fromisoformat(end)
        secs = int((t1 - t0).total_seconds())
        entries.append(
            {
                "logId": log_id,
                "dateOfSleep": end[:10],
                "startTime": f"{start}.000",
                "endTime": f"{end}.000",
                "duration": secs * 1000,
                "minutesToFallAsleep": 0,
                "minutesAsleep": secs // 60,
                "minutesAwake": 0,
                "timeInBed": secs // 60,
                "efficiency": 100,
                "type": "classic",
                "mainSleep": True,
                "levels": {
                    "data": [{"dateTime": f"{start}.000", "level": "asleep", "seconds": secs}]
                },
            }
        )
    p = tmp_path / "sleep-2026.json"
    p.write_text(json.dumps(entries))
    return p


def garmin_sleep(tmp_path: Path, start: datetime, plan: list[tuple[int, str]], end_min: int):
    """A Garmin sleep FIT file with no timestamp_correlation (so the user's zones apply)."""

    def mesg(name: str, **fields) -> dict:
        return {"mesg_num": Profile["mesg_num"][name.upper()], **fields}

    enc = Encoder()
    enc.write_mesg(
        mesg("file_id", type=49, manufacturer="garmin", product=3290, time_created=start)
    )
    enc.write_mesg(mesg("event", timestamp=start, event="timer", event_type="start"))
    for m, level in plan:
        enc.write_mesg(
            mesg("sleep_level", timestamp=start + timedelta(minutes=m), sleep_level=level)
        )
    stop = start + timedelta(minutes=end_min)
    enc.write_mesg(mesg("event", timestamp=stop, event="timer", event_type="stop"))
    p = tmp_path / "sleep.fit"
    p.write_bytes(enc.close())
    return p


# ------------------------------------------------------------------ spring forward (Berlin)


def test_spring_forward_apple_real_minutes_and_offsets(tmp_path, tsettings):
    f = apple_export(
        tmp_path,
        [
            ("InBed", "2026-03-28 23:00:00 +0100", "2026-03-29 07:00:00 +0200"),
            ("AsleepCore", "2026-03-28 23:20:00 +0100", "2026-03-29 01:30:00 +0100"),
            ("AsleepDeep", "2026-03-29 01:30:00 +0100", "2026-03-29 03:30:00 +0200"),
            ("AsleepREM", "2026-03-29 03:30:00 +0200", "2026-03-29 06:50:00 +0200"),
        ],
    )
    t = ingest(f, "ber", tsettings)
    ep = t["sleep_episode"]
    check_rule(ep)
    r = ep.row(0, named=True)
    # 8 clock hours, 7 real ones
    assert r["tib_min"] == 420 and r["tst_min"] == 390
    assert r["sleep_date"] == date(2026, 3, 29) and r["is_main_sleep"]
    assert r["utc_offset_min"] == 60 and r["tz_source"] == "record"
    st = t["sleep_stage"]
    assert st["utc_offset_min"].to_list() == [60, 60, 60, 120]
    assert (st["episode_id"] == r["record_id"]).all()


def test_spring_forward_garmin_in_user_zone(tmp_path, tsettings):
    start = utc(2026, 3, 28, 22)  # 23:00 CET
    plan = [(0, "light"), (120, "deep"), (200, "rem"), (400, "awake")]
    t = ingest(garmin_sleep(tmp_path, start, plan, 420), "ber", tsettings)
    r = t["sleep_episode"].row(0, named=True)
    check_rule(t["sleep_episode"])
    assert r["tib_min"] == 420 and r["tst_min"] == 400
    assert r["sleep_date"] == date(2026, 3, 29) and r["is_main_sleep"]
    assert (r["utc_offset_min"], r["tz_source"], r["tz_name"]) == (60, "user_setting", BERLIN)
    # light from 23:00 CET, deep from 01:00 CET, rem from 03:20 CEST, awake from 06:40 CEST
    assert t["sleep_stage"]["utc_offset_min"].to_list() == [60, 60, 120, 120]


def test_spring_forward_oura_offsets_from_record(tmp_path, tsettings):
    f = oura_json(tmp_path, [("a", "2026-03-28T23:00:00+01:00", "2026-03-29T07:00:00+02:00", 84)])
    t = ingest(f, "nyc", tsettings)  # the record's offset wins over the user's home zone
    r = t["sleep_episode"].row(0, named=True)
    check_rule(t["sleep_episode"])
    assert minutes(r["start_utc"], r["end_utc"]) == 420
    assert r["start_utc"] == utc(2026, 3, 28, 22)
    assert (r["utc_offset_min"], r["tz_source"]) == (60, "record")
    assert r["sleep_date"] == date(2026, 3, 29) and r["is_main_sleep"]


# ----------------------------------------------------------------- fall back (New York)


def test_fall_back_apple_repeated_hour(tmp_path, tsettings):
    f = apple_export(
        tmp_path,
        [
            ("InBed", "2026-10-31 23:00:00 -0400", "2026-11-01 07:00:00 -0500"),
            ("AsleepCore", "2026-10-31 23:15:00 -0400", "2026-11-01 01:30:00 -0400"),
            # 01:10 on the repeated hour, after the clocks went back: 40 min after 01:30 EDT
            ("AsleepCore", "2026-11-01 01:10:00 -0500", "2026-11-01 06:45:00 -0500"),
        ],
    )
    t = ingest(f, "nyc", tsettings)
    r = t["sleep_episode"].row(0, named=True)
    check_rule(t["sleep_episode"])
    assert r["tib_min"] == 540  # 8 clock hours, 9 real ones
    assert r["tst_min"] == 135 + 335
    assert r["waso_min"] == 40 and r["awakenings"] == 1
    assert r["sleep_date"] == date(2026, 11, 1) and r["is_main_sleep"]
    assert t["sleep_stage"]["utc_offset_min"].to_list() == [-240, -240, -300]


def test_fall_back_garmin_in_user_zone(tmp_path, tsettings):
    start = utc(2026, 11, 1, 3, 30)  # 23:30 EDT on Oct 31
    plan = [(0, "light"), (180, "deep"), (300, "rem"), (500, "awake")]
    t = ingest(garmin_sleep(tmp_path, start, plan, 510), "nyc", tsettings)
    r = t["sleep_episode"].row(0, named=True)
    assert r["tib_min"] == 510 and r["sleep_date"] == date(2026, 11, 1) and r["is_main_sleep"]
    assert r["utc_offset_min"] == -240
    assert t["sleep_stage"]["utc_offset_min"].to_list() == [-240, -300, -300, -300]


# ------------------------------------------------------------------------------- flights


def test_eastward_flight_sleep_date_is_berlin_wake_date(tmp_path, tsettings):
    # Asleep over the Atlantic from 19:30 New York time; wakes 05:30 in Berlin, which is still
    # 23:30 of the previous day in New York: the night belongs to the Berlin wake-up date.
    f = apple_export(
        tmp_path,
        [
            ("InBed", "2026-05-10 19:30:00 -0400", "2026-05-11 05:30:00 +0200"),
            ("AsleepCore", "2026-05-10 19:40:00 -0400", "2026-05-11 02:00:00 +0200"),
            ("AsleepCore", "2026-05-11 02:00:00 +0200", "2026-05-11 05:20:00 +0200"),
        ],
    )
    t = ingest(f, "nyc", tsettings)
    r = t["sleep_episode"].row(0, named=True)
    check_rule(t["sleep_episode"])
    assert r["tib_min"] == 240
    assert r["sleep_date"] == date(2026, 5, 11) and r["is_main_sleep"]
    assert r["utc_offset_min"] == -240  # at bedtime, still on New York time
    assert t["sleep_stage"]["utc_offset_min"].to_list() == [-240, -240, 120]


def test_move_follows_zone_history_for_offsetless_fitbit(tmp_path, tsettings):
    f = fitbit_sleep(
        tmp_path,
        [
            (1, "2026-05-09T22:00:00", "2026-05-10T06:00:00"),  # still in New York
            (2, "2026-05-11T23:00:00", "2026-05-12T07:00:00"),  # in Berlin from May 11
        ],
    )
    ep = ingest(f, "mover", tsettings)["sleep_episode"]
    check_rule(ep)
    assert ep["start_utc"].to_list() == [utc(2026, 5, 10, 2), utc(2026, 5, 11, 21)]
    assert ep["utc_offset_min"].to_list() == [-240, 120]
    assert ep["tz_name"].to_list() == [NEW_YORK, BERLIN]
    assert (ep["tz_source"] == "user_setting").all()
    assert ep["sleep_date"].to_list() == [date(2026, 5, 10), date(2026, 5, 12)]
    assert ep["is_main_sleep"].all() and (ep["tib_min"] == 480).all()


def test_westward_flight_long_day_and_nap_across_zones(tmp_path, tsettings):
    f = apple_export(
        tmp_path,
        [
            ("AsleepCore", "2026-06-01 23:00:00 +0200", "2026-06-02 07:00:00 +0200"),
            # nap on the plane: falls asleep on Berlin time, wakes on New York time
            ("AsleepCore", "2026-06-02 14:00:00 +0200", "2026-06-02 09:30:00 -0400"),
            # bedtime in New York after a 28-hour day
            ("AsleepCore", "2026-06-02 22:30:00 -0400", "2026-06-03 06:30:00 -0400"),
        ],
    )
    ep = ingest(f, "ber", tsettings)["sleep_episode"]
    check_rule(ep)
    assert ep["utc_offset_min"].to_list() == [120, 120, -240]
    assert ep["tib_min"].to_list() == [480, 90, 480]
    assert ep["sleep_date"].to_list() == [date(2026, 6, 2), date(2026, 6, 2), date(2026, 6, 3)]
    assert ep["is_main_sleep"].to_list() == [True, False, True]
    night = ep.row(2, named=True)
    bed_local = night["start_utc"] + timedelta(minutes=night["utc_offset_min"])
    assert bed_local.strftime("%H:%M") == "22:30"
    awake_h = minutes(ep["end_utc"][0], night["start_utc"]) / 60
    assert awake_h == 21.5


# ------------------------------------------------------------------------------------ naps


def test_afternoon_nap_is_not_main_sleep_fitbit(tmp_path, tsettings):
    # The nap is the last log of the export: nothing later competes with it. It still must not
    # become a second main sleep of its wake date (a bug of the Fitbit reader's old window).
    f = fitbit_sleep(
        tmp_path,
        [
            (1, "2026-04-14T23:00:00", "2026-04-15T07:00:00"),
            (2, "2026-04-15T14:00:00", "2026-04-15T14:45:00"),
        ],
    )
    ep = ingest(f, "ber", tsettings)["sleep_episode"]
    check_rule(ep)
    assert ep["sleep_date"].to_list() == [date(2026, 4, 15)] * 2
    assert ep["is_main_sleep"].to_list() == [True, False]
    assert ep["tib_min"].to_list() == [480, 45]


def test_nap_garmin_single_episode_file(tmp_path, tsettings):
    start = utc(2026, 4, 15, 12)  # 14:00 CEST
    t = ingest(garmin_sleep(tmp_path, start, [(0, "light"), (40, "awake")], 45), "ber", tsettings)
    r = t["sleep_episode"].row(0, named=True)
    assert r["sleep_date"] == date(2026, 4, 15) and not r["is_main_sleep"]
    assert r["night_rule"] == NIGHT_RULE


# ----------------------------------------------------------------------------- split night


def split_night(tmp_path: Path, st: Settings) -> dict[str, pl.DataFrame]:
    """Two Oura periods 40 min apart: 23:00–02:00 and 02:40–07:00 (Berlin, all light sleep)."""
    f = oura_json(
        tmp_path,
        [
            ("p1", "2026-04-20T23:00:00+02:00", "2026-04-21T02:00:00+02:00", 36),
            ("p2", "2026-04-21T02:40:00+02:00", "2026-04-21T07:00:00+02:00", 52),
        ],
    )
    return ingest(f, "ber", st)


def test_split_night_shares_a_night_after_merge(tmp_path, tsettings):
    ep = split_night(tmp_path, tsettings)["sleep_episode"]
    check_rule(ep)
    assert ep["sleep_date"].to_list() == [date(2026, 4, 21)] * 2
    assert ep["is_main_sleep"].to_list() == [False, True]
    resolved = resolve_sleep(ep.lazy(), tsettings.source_priority).collect()
    assert resolved.height == 2 and resolved["night_id"].n_unique() == 1


def test_split_night_counts_as_one_nights_sleep(tmp_path, tsettings):
    t = split_night(tmp_path, tsettings)
    silver = {"sleep_episode": t["sleep_episode"].lazy(), "sleep_stage": t["sleep_stage"].lazy()}
    nf = build_nightly_features(silver, {"ber": tsettings.users["ber"]})
    row = nf.filter(pl.col("sleep_date") == date(2026, 4, 21)).row(0, named=True)
    assert row["tst_min"] == 180 + 260


# --------------------------------------------------------------------- shared helpers directly


def test_gap_and_fold_agree_between_scalar_and_vectorised():
    user = UserSettings("x", tz=BERLIN, tz_history=(ZonePeriod(date(2026, 10, 1), NEW_YORK),))
    clocks = [
        datetime(2026, 3, 29, 1, 59),  # before the Berlin gap
        datetime(2026, 3, 29, 2, 30),  # inside the gap: read on the old offset
        datetime(2026, 3, 29, 3, 0),
        datetime(2026, 11, 1, 1, 30),  # New York's repeated hour: first occurrence (EDT)
        datetime(2026, 11, 1, 2, 30),
    ]
    got = pl.select(local_to_utc(pl.lit(pl.Series(clocks)), user).alias("u"))["u"].to_list()
    want = [wall_to_utc(c, zone_on(user, c.date())) for c in clocks]
    assert (
        got
        == want
        == [
            utc(2026, 3, 29, 0, 59),
            utc(2026, 3, 29, 1, 30),
            utc(2026, 3, 29, 1, 0),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 7, 30),
        ]
    )


def test_assign_nights_uses_wake_offset_and_real_length():
    # A spring-forward night and a morning nap on the same wake date: the night is main.
    df = pl.DataFrame(
        {
            "start_utc": [utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 6, 30)],
            "end_utc": [utc(2026, 3, 29, 5, 0), utc(2026, 3, 29, 9, 0)],
            "s": [60, 120],
            "e": [120, 120],
        }
    )
    out = assign_nights(df, start_offset="s", end_offset="e")
    assert out["sleep_date"].to_list() == [date(2026, 3, 29)] * 2
    assert out["is_main_sleep"].to_list() == [True, False]
    assert out.columns[:4] == df.columns and (out["night_rule"] == NIGHT_RULE).all()
    # a wake-up just after local midnight belongs to the new day only at the wake offset
    late = pl.DataFrame(
        {"start_utc": [utc(2026, 6, 2, 18)], "end_utc": [utc(2026, 6, 2, 22, 30)]}
    ).with_columns(s=pl.lit(120), e=pl.lit(-240))
    assert assign_nights(late, start_offset="s")["sleep_date"][0] == date(2026, 6, 3)
    assert assign_nights(late, start_offset="s", end_offset="e")["sleep_date"][0] == date(
        2026, 6, 2
    )
