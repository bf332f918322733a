"""Garmin FIT reader: real files from three FIT test suites, plus sleep/HRV files encoded here."""

from __future__ import annotations

import csv
import json
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from garmin_fit_sdk import Encoder, Profile

from tests.conftest import shared
from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.fit_decode import decode, diagnose
from tunewell.ingest.formats import garmin_fit
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.timezones import local_time, zone_offsets
from tunewell.settings import UserSettings

BROKEN = (
    "activity-filecrc.fit",
    "activity-activity-filecrc.fit",
    "activity-settings-corruptheader.fit",
    "activity-settings-nodata.fit",
    "activity-unexpected-eof.fit",
    "nick.fit",
    "strava-android-app-201.10-b1218918.fit",
)
RR_FILES = ("garmin-edge-820-bike.fit", "garmin-fenix-5-run.fit", "garmin-fenix-5-walk.fit")
USER = UserSettings("u1", tz="Europe/Berlin")


def fp(name: str) -> Path:
    return shared("fit", "python-fitparse", name)


def read_tables(path: Path, user: UserSettings = USER) -> dict[str, pl.DataFrame]:
    ctx = FileContext(Path(path), str(path), "0" * 64, user)
    out: dict[str, list[pl.DataFrame]] = {}
    for table, df in garmin_fit.read(ctx):
        out.setdefault(table, []).append(df)
    return {t: pl.concat(dfs) for t, dfs in out.items()}


def test_sniff_by_content(tmp_path: Path) -> None:
    data = _encode([_file_id(49)])
    assert garmin_fit.sniff(tmp_path / "x.bin", data[:64])
    assert not garmin_fit.sniff(tmp_path / "x.fit", b"timestamp,heart_rate\n1,2\n")


@pytest.mark.realdata
def test_broken_files_quarantined_with_reason_while_others_ingest(settings, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in (*BROKEN, "activity-settings.fit", "garmin-fenix-5-run.fit"):
        (inbox / name).write_bytes(fp(name).read_bytes())
    report = ingest_paths([inbox], "u1", settings)
    status = {Path(f.file).name: f for f in report.files}
    assert {n for n, f in status.items() if f.status == "quarantined"} == set(BROKEN)
    assert status["garmin-fenix-5-run.fit"].rows["rr_interval"] > 0
    # chained valid file (activity + settings) is read to the end
    assert status["activity-settings.fit"].status == "ingested"
    reasons = {
        json.loads(p.read_text())["file"].split("/")[-1]: json.loads(p.read_text())["error"]
        for p in (settings.lake / "quarantine").glob("*.json")
    }
    assert set(reasons) == set(BROKEN)
    assert "CRC mismatch in FIT file #2" in reasons["activity-activity-filecrc.fit"]
    assert "CRC mismatch" in reasons["activity-filecrc.fit"]
    assert "corrupt header in FIT file #2" in reasons["activity-settings-corruptheader.fit"]
    assert "unexpected end of file" in reasons["activity-settings-nodata.fit"]
    assert "unexpected end of file" in reasons["activity-unexpected-eof.fit"]
    assert "14412 messages were readable" in reasons["nick.fit"]


@pytest.mark.realdata
def test_header_crc_zero_is_valid() -> None:
    """check_integrity() says False for these; the files are valid (header CRC 0 = not set)."""
    for name in ("2013-02-06-12-11-14.fit", "Edge810-Vector-2013-08-16-15-35-10.fit"):
        assert diagnose(fp(name).read_bytes()) is None
        tables = read_tables(fp(name))
        assert tables["workout"].height == 1
        assert tables["heart_rate"].height > 100


def _reference(csv_name: str) -> pl.DataFrame:
    """python-fitparse's reference records: local PDT times and HR as the FIT SDK dumped them."""
    rows = []
    with fp(csv_name).open() as fh:
        for r in csv.DictReader(fh):
            local = datetime.strptime(r["timestamp"].replace(" PDT", ""), "%a %b %d %H:%M:%S %Y")
            if r["heart_rate"]:
                utc = (local + timedelta(hours=7)).replace(tzinfo=UTC)
                rows.append({"start_utc": utc, "bpm": float(r["heart_rate"])})
    return pl.DataFrame(rows).with_columns(pl.col("start_utc").dt.cast_time_unit("us"))


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name", ["garmin-fenix-5-run", "garmin-fenix-5-walk", "garmin-edge-820-bike"]
)
def test_heart_rate_matches_reference_csv(name: str) -> None:
    ref = _reference(f"{name}-records.csv")
    hr = read_tables(fp(f"{name}.fit"))["heart_rate"]
    got = hr.select("start_utc", "bpm").sort("start_utc")
    assert got.equals(ref.sort("start_utc"))
    assert (hr["context"] == "workout").all()
    assert (hr["tz_source"] == "device").all() and (hr["utc_offset_min"] == -420).all()


@pytest.mark.realdata
@pytest.mark.parametrize("name", RR_FILES)
def test_rr_intervals_plausible_and_timed_within_session(name: str) -> None:
    t = read_tables(fp(name))
    rr, w = t["rr_interval"], t["workout"]
    assert rr.height >= 40
    assert rr["rr_ms"].is_between(300, 2000).mean() >= 0.9
    assert rr["start_utc"].is_sorted() and rr["start_utc"].n_unique() == rr.height
    # beats accumulated from the session start must end close to the session end
    assert rr["start_utc"].min() > w["start_utc"][0]
    assert abs((rr["start_utc"].max() - w["end_utc"][0]).total_seconds()) < 30


@pytest.mark.realdata
def test_compressed_timestamp_files_read_via_fitparse() -> None:
    for name in ("antfs-dump.63.fit", "compressed-speed-distance.fit"):
        assert decode(fp(name)).decoder == "fitparse"
    t = read_tables(fp("compressed-speed-distance.fit"))
    ref = []
    with fp("compressed-speed-distance-records.csv").open() as fh:
        for r in csv.DictReader(fh):
            ref.append(float(r[" Heart Rate [bpm]"]))
    hr = t["heart_rate"].sort("start_utc")
    assert hr["bpm"].to_list() == ref
    # system time placed by activity.local_timestamp (2012-02-13 12:21:03 local = session end)
    w = t["workout"]
    local_end = w["end_utc"][0].astimezone(UTC) + timedelta(minutes=int(w["utc_offset_min"][0]))
    assert (
        abs((local_end.replace(tzinfo=None) - datetime(2012, 2, 13, 12, 21, 3)).total_seconds()) < 5
    )
    assert w["activity"][0] == "running" and w["tz_source"][0] == "user_setting"


@pytest.mark.realdata
def test_monitoring_steps_timestamp16_and_offset() -> None:
    t = read_tables(fp("MonitoringFile.fit"))
    steps = t["steps"]
    assert steps["device"][0] == "garmin vivo fit"
    # deltas of the cumulative walking/running totals add up to the device's daily summary
    assert steps["steps"].sum() == 3142 + 31
    assert (steps["steps"] >= 0).all()
    assert steps["end_utc"].is_sorted() and (steps["end_utc"] >= steps["start_utc"]).all()
    day0 = datetime(2014, 12, 27, 6, tzinfo=UTC)
    assert steps["start_utc"].min() >= day0 and steps["end_utc"].max() <= day0 + timedelta(days=1)
    assert (steps["utc_offset_min"] == -360).all() and (steps["tz_source"] == "device").all()


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("folder", "name", "device"),
    [
        ("python-fitparse", "2019-02-17-062644-ELEMNT-297E-195-0.fit", "wahoo elemnt"),
        ("python-fitparse", "coros-pace-2-cycling-misaligned-fields.fit", "coros pace 2"),
        ("FITfileR", "tomtom-runner3-ride.fit", "tomtom 2016"),
        ("FITfileR", "zwift-turbo.fit", "zwift"),
        ("python-fitparse", "null_compressed_speed_dist.fit", "zwift"),
    ],
)
def test_non_garmin_makers(folder: str, name: str, device: str) -> None:
    t = read_tables(shared("fit", folder, name))
    w = t["workout"]
    assert w.height == 1 and w["device"][0] == device
    assert w["activity"][0] == "cycling"
    if "heart_rate" in t:
        assert t["heart_rate"]["bpm"].is_between(25, 230).all()


# --- files encoded here ----------------------------------------------------------------------

NIGHT = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 23:00 in Berlin


def _mesg(name: str, **fields) -> dict:
    return {"mesg_num": Profile["mesg_num"][name.upper()], **fields}


def _file_id(ftype: int) -> dict:
    return _mesg("file_id", type=ftype, manufacturer="garmin", product=3290, time_created=NIGHT)


def _encode(mesgs: list[dict]) -> bytes:
    enc = Encoder()
    for m in mesgs:
        enc.write_mesg(m)
    return enc.close()


def _sleep_file(tmp_path: Path) -> Path:
    plan = [
        (0, "awake"),
        (10, "light"),
        (60, "deep"),
        (120, "light"),
        (180, "awake"),
        (192, "rem"),
        (240, "unmeasurable"),
        (250, "light"),
        (450, "awake"),
    ]
    mesgs = [_file_id(49), _mesg("event", timestamp=NIGHT, event="timer", event_type="start")]
    mesgs += [
        _mesg("sleep_level", timestamp=NIGHT + timedelta(minutes=m), sleep_level=lvl)
        for m, lvl in plan
    ]
    end = NIGHT + timedelta(minutes=480)
    mesgs += [
        _mesg("event", timestamp=end, event="timer", event_type="stop"),
        _mesg(
            "sleep_assessment",
            overall_sleep_score=81,
            sleep_quality_score=70,
            awakenings_count=1,
            average_stress_during_sleep=12.5,
        ),
    ]
    path = tmp_path / "sleep.fit"
    path.write_bytes(_encode(mesgs))
    return path


def test_encoded_sleep_file(tmp_path: Path) -> None:
    t = read_tables(_sleep_file(tmp_path))
    ep = t["sleep_episode"].row(0, named=True)
    # light 50+60+200, deep 60, rem 48 → 418 min asleep in 480 min. Between onset and the final
    # awakening, 12 min awake and 10 min unmeasurable are not asleep: WASO 22 min, two gaps
    # > 5 min (lake.sleep_rules, the same numbers the features compute from the stages).
    assert ep["tib_min"] == 480 and ep["tst_min"] == 418
    assert ep["sol_min"] == 10 and ep["waso_min"] == 22 and ep["awakenings"] == 2
    assert ep["efficiency_pct"] == pytest.approx(100 * 418 / 480)
    assert str(ep["sleep_date"]) == "2026-03-02" and ep["is_main_sleep"]
    assert ep["night_rule"] == "noon-split/v1" and ep["device"] == "garmin fenix6"
    st = t["sleep_stage"]
    assert st.height == 8 and set(st["stage"]) == {"awake", "light", "deep", "rem"}
    assert (st["episode_id"] == ep["record_id"]).all()
    assert st["end_utc"].max() == NIGHT + timedelta(minutes=480)
    vs = {r["name"]: r["value"] for r in t["vendor_score"].iter_rows(named=True)}
    assert vs["overall_sleep_score"] == 81 and vs["average_stress_during_sleep"] == 12.5
    assert (t["vendor_score"]["date"].cast(pl.String) == "2026-03-02").all()


def test_encoded_hrv_status_file(tmp_path: Path) -> None:
    start = NIGHT + timedelta(hours=1)
    mesgs = [_file_id(68)]
    mesgs += [
        _mesg("hrv_value", timestamp=start + timedelta(minutes=5 * i), value=40 + i % 7)
        for i in range(96)
    ]
    wake = start + timedelta(hours=8)
    mesgs += [
        _mesg(
            "hrv_status_summary",
            timestamp=wake,
            weekly_average=44.5,
            last_night_average=43.0,
            last_night_5_min_high=61.0,
            baseline_low_upper=35.0,
            baseline_balanced_lower=38.0,
            baseline_balanced_upper=52.0,
            status="balanced",
        ),
        _mesg(
            "timestamp_correlation",
            timestamp=wake,
            local_timestamp=int((wake - datetime(1989, 12, 31, tzinfo=UTC)).total_seconds()) + 3600,
        ),
    ]
    path = tmp_path / "hrv.fit"
    path.write_bytes(_encode(mesgs))
    t = read_tables(path)
    hrv = t["hrv"]
    five = hrv.filter(pl.col("window") == "5min")
    assert five.height == 96 and five["value_ms"].min() == 40 and five["value_ms"].max() == 46
    nightly = hrv.filter(pl.col("window") == "nightly")
    assert nightly["value_ms"].to_list() == [43.0] and (hrv["metric"] == "rmssd").all()
    assert (hrv["utc_offset_min"] == 60).all() and (hrv["tz_source"] == "device").all()
    vs = {r["name"]: r["value"] for r in t["vendor_score"].iter_rows(named=True)}
    assert vs["hrv_status"] == 4 and vs["hrv_weekly_average"] == 44.5
    assert vs["hrv_baseline_balanced_upper"] == 52.0


def test_truncated_encoded_file_is_refused_whole(tmp_path: Path) -> None:
    data = _sleep_file(tmp_path).read_bytes()
    cut = tmp_path / "cut.fit"
    cut.write_bytes(data[:-20])
    with pytest.raises(ReadError, match=r"unexpected end of file.*messages were readable"):
        read_tables(cut)


def test_synthetic_garmin_person_round_trip(tmp_path: Path) -> None:
    """Files from tunewell.synth.garmin_fit: what was simulated is what the reader finds."""
    from tunewell.synth.garmin_fit import write_garmin
    from tunewell.synth.people import simulate
    from tunewell.synth.zones import user_settings

    pop = simulate(1, days=3, seed=3)
    person = pop.people[0]
    user = user_settings(pop, person)
    tables: dict[str, list[pl.DataFrame]] = {}
    for path in write_garmin(pop, person, tmp_path):
        for table, df in read_tables(path, user).items():
            tables.setdefault(table, []).append(df)
    t = {k: pl.concat(v) for k, v in tables.items()}
    nights = pop.nights.sort("sleep_date")
    ep = t["sleep_episode"].sort("sleep_date")
    assert ep["sleep_date"].to_list() == nights["sleep_date"].to_list()
    assert ep["tst_min"].round(3).to_list() == nights["tst_min"].round(3).to_list()
    assert ep["is_main_sleep"].all()
    assert t["steps"]["steps"].sum() == pop.minutes["steps"].sum()
    samples = t["heart_rate"].filter(pl.col("context") == "sample")
    assert samples.height == pop.minutes["hr"].drop_nulls().len()
    # every per-minute HR stamped only with timestamp_16 lands on its simulated minute
    expected = pop.minutes.filter(pl.col("hr").is_not_null())["start_utc"]
    assert set(samples["start_utc"].dt.cast_time_unit("us")) == set(
        expected.dt.cast_time_unit("us")
    )
    assert (t["rr_interval"]["rr_ms"].is_between(300, 2000)).mean() > 0.95
    assert t["hrv"].filter(pl.col("window") == "5min").height > 0
    # vitals: respiration all day (every 10 min), pulse ox asleep, one skin-temp deviation a night
    v = t["vitals"]
    assert {"respiration_rate", "spo2", "temperature_deviation", "resting_hr"} <= set(v["metric"])
    dev = v.filter(pl.col("metric") == "temperature_deviation").sort("start_utc")
    np.testing.assert_allclose(dev["value"], nights["skin_temp_dev"], atol=1e-5)
    resp = v.filter(pl.col("metric") == "respiration_rate")
    assert resp["value"].is_between(4, 60).all()
    asleep = resp.join_where(
        nights.select("onset_utc", "wake_utc", "resp_rate"),
        pl.col("start_utc") >= pl.col("onset_utc"),
        pl.col("start_utc") < pl.col("wake_utc"),
    )
    assert asleep.height > 100 and abs((asleep["value"] - asleep["resp_rate"]).mean()) < 0.15
    assert resp.height > 2 * asleep.height  # daytime samples exist and are faster
    spo2 = v.filter(pl.col("metric") == "spo2")
    assert spo2.height > 100 and spo2["value"].is_between(85, 100).all()


def _raw_fit(messages: list[tuple[int, list[tuple[int, int]], list[tuple[int, ...]]]]) -> bytes:
    """A FIT file written byte by byte, for fields the SDK's encoder refuses to write (fields
    its profile does not name). ``messages``: (global number, [(field number, size 1|4)], rows)."""
    from garmin_fit_sdk.crc_calculator import CrcCalculator

    body = b""
    for local, (gnum, fields, rows) in enumerate(messages):
        body += struct.pack("<BBBHB", 0x40 | local, 0, 0, gnum, len(fields))
        body += b"".join(
            struct.pack("<BBB", n, size, 0x02 if size == 1 else 0x86) for n, size in fields
        )
        for row in rows:
            body += bytes([local]) + b"".join(
                struct.pack("<B" if size == 1 else "<I", v)
                for (_, size), v in zip(fields, row, strict=True)
            )
    hdr = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    hdr += struct.pack("<H", CrcCalculator.calculate_crc(hdr, 0, 12))
    data = hdr + body
    return data + struct.pack("<H", CrcCalculator.calculate_crc(data, 0, len(data)))


def _raw_sleep(levels: list[int], assessment: list[tuple[int, int]]) -> bytes:
    bed = int((NIGHT - datetime(1989, 12, 31, tzinfo=UTC)).total_seconds())
    return _raw_fit(
        [
            (0, [(0, 1), (4, 4)], [(49, bed + 8 * 3600)]),  # file_id: type sleep, time_created
            (275, [(253, 4), (0, 1)], [(bed + i * 1800, lv) for i, lv in enumerate(levels)]),
            (346, [(n, 1) for n, _ in assessment], [tuple(v for _, v in assessment)]),
            (21, [(253, 4), (0, 1), (1, 1)], [(bed + 8 * 3600, 0, 4)]),  # event: timer stop
        ]
    )


def test_sleep_score_fields_without_a_profile_name_do_not_lose_the_night(tmp_path: Path) -> None:
    # sleep_assessment fields 12 and 13 are not in the SDK's profile: they come back by number
    path = tmp_path / "sleep.fit"
    path.write_bytes(
        _raw_sleep([1, 2, 3, 4, 2, 3, 2, 4, 2, 1], [(6, 80), (7, 70), (12, 5), (13, 9)])
    )
    t = read_tables(path)
    assert t["sleep_episode"].height == 1 and t["sleep_stage"].height > 0
    names = set(t["vendor_score"]["name"])
    assert "overall_sleep_score" in names and not any(n.isdigit() for n in names)


def test_a_night_the_watch_could_not_measure_is_not_a_zero_sleep_night(tmp_path: Path) -> None:
    path = tmp_path / "sleep.fit"
    path.write_bytes(_raw_sleep([0, 0, 0], [(6, 0)]))  # all "unmeasurable", score 0
    t = read_tables(path)
    assert all(df.is_empty() for df in t.values())


def test_a_daily_file_across_the_dst_change_gets_both_offsets(tmp_path: Path) -> None:
    from tunewell.synth.generate import write_inbox
    from tunewell.synth.people import simulate

    pop = simulate(3, 8, seed=7, start=date(2026, 3, 25))
    users = write_inbox(pop, tmp_path / "inbox")
    user = next(u for u in users.values() if u.tz == "Europe/Berlin" and not u.tz_history)
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET → 03:00 CEST
    day = []
    for f in sorted((tmp_path / "inbox" / user.user_id).rglob("*WELLNESS.fit")):
        hr = read_tables(f, user).get("heart_rate")
        if hr is not None and hr["start_utc"].min() < change < hr["start_utc"].max():
            day.append(hr)
    (hr,) = day
    before = hr.filter(pl.col("start_utc") < change)["utc_offset_min"].unique().to_list()
    after = hr.filter(pl.col("start_utc") >= change)["utc_offset_min"].unique().to_list()
    assert (before, after) == ([60], [120])
    assert set(hr["tz_source"]) == {"device"} and set(hr["tz_name"]) == {"Europe/Berlin"}


@pytest.mark.parametrize(
    ("day", "offset_min"),
    [(date(2026, 3, 29), 60), (date(2026, 10, 25), 120), (date(2026, 6, 1), 120)],
)
def test_daily_log_covers_the_local_day_its_midnight_stamp_closes(day, offset_min):
    """A daily log stamped at the midnight ending ``day`` spans that day, 23 or 25 h on DST days
    (the file's offset is the one read at the day's start)."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime.combine(day, datetime.min.time(), berlin).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), berlin).astimezone(UTC)
    clock = garmin_fit.Clock(offset_min, None, USER.home_tz, USER, offset_at=start)
    assert clock.day_closed_by(end) == (start, end)
    # a stamp within the day is that day so far
    assert clock.day_closed_by(start + timedelta(hours=9)) == (start, start + timedelta(hours=9))
    # without a configured zone the file's one offset places the day (no DST change known)
    bare = UserSettings(user_id="u")
    if day.month == 6:
        clock = garmin_fit.Clock(offset_min, None, bare.home_tz, bare, offset_at=start)
        assert clock.day_closed_by(end) == (start, end)


@pytest.mark.parametrize("zoned", [True, False])
def test_scalar_local_time_follows_the_rows_offset_rule(zoned: bool) -> None:
    """``Clock.local`` (a few instants per file, in Python) gives the wall-clock time that the
    rows' own ``utc_offset_min`` (``Clock.label`` and the lake's zone rule, in polars) gives, for
    instants all around both 2026 DST changes and for device offsets that agree or not."""
    user = USER if zoned else UserSettings("u2")
    t0 = datetime(2026, 3, 27, tzinfo=UTC)
    times = [t0 + timedelta(minutes=37 * i) for i in range(300)]
    times += [datetime(2026, 10, 23, tzinfo=UTC) + timedelta(minutes=37 * i) for i in range(300)]
    df = pl.DataFrame({"start_utc": pl.Series(times, dtype=garmin_fit.UTC_TS)})
    for offset, at in ((60, t0), (120, t0), (None, None), (-300, t0)):
        clock = garmin_fit.Clock(offset, None, user.home_tz, user, offset_at=at)
        rows = zone_offsets(clock.label(df), user)
        expected = rows.select(local_time())["start_utc"].to_list()
        assert [clock.local(t) for t in times] == expected, offset


@pytest.mark.realdata
def test_fast_crc_is_the_sdk_crc_on_every_real_file() -> None:
    """``crc16`` stands in for the SDK's own CRC check on sound files, so it must be that CRC."""
    from garmin_fit_sdk.crc_calculator import CrcCalculator

    from tunewell.ingest.fit_decode import crc16

    rng = np.random.default_rng(3)
    for p in sorted(x for x in shared("fit").rglob("*") if x.suffix.lower() == ".fit"):
        data = p.read_bytes()
        for a, b in ((0, len(data)), (0, 12), *rng.integers(0, len(data), (3, 2)).tolist()):
            a, b = min(a, b), max(a, b)
            assert crc16(data, a, b) == CrcCalculator.calculate_crc(data, a, b), (p.name, a, b)
