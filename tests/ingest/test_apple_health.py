"""Apple Health reader: real exports, crafted iOS 16 quirks, sleep nights, devices, streaming."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from lxml import etree

from tests.conftest import ROOT, shared
from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.formats import apple_health as ah
from tunewell.ingest.registry import detect, read_head
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import store
from tunewell.settings import UserSettings

WATCH = (
    "&lt;&lt;HKDevice: {addr}&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
    "hardware:Watch6,2, software:9.1&gt;"
)
HK = "HKQuantityTypeIdentifier"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
SV = "HKCategoryValueSleepAnalysis"

# Shape of the iOS 16 inline DTD: the VisionPrescription ATTLIST lacks its closing ">".
IOS16_DTD = """<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 12 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  device        CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT VisionPrescription ((RightEye|LeftEye|Attachment|MetadataEntry)*)>
<!ATTLIST VisionPrescription
  type             CDATA #REQUIRED
  dateIssued       CDATA #REQUIRED
  expirationDate   CDATA #REQUIRED
  brand            CDATA #IMPLIED

<!ELEMENT RightEye EMPTY>
]>
"""  # noqa: E501


def rec(
    rtype: str,
    start: str,
    end: str | None = None,
    value: str | float = "",
    unit: str = "count/min",
    addr: str | None = "0x283c8f1b0",
    source: str = "Ann’s Apple Watch",
    children: str = "",
) -> str:
    dev = f' device="{WATCH.format(addr=addr)}"' if addr else ""
    return (
        f'<Record type="{rtype}" sourceName="{source}" sourceVersion="9.1"{dev} unit="{unit}" '
        f'creationDate="{end or start}" startDate="{start}" endDate="{end or start}" '
        f'value="{value}">{children}</Record>\n'
    )


def export_xml(body: str, dtd: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + dtd + '<HealthData locale="en_US">\n'
        '<ExportDate value="2023-03-10 09:00:00 -0500"/>\n<Me HKCharacteristicTypeIdentifierDate'
        'OfBirth="1990-01-01"/>\n' + body + "</HealthData>\n"
    ).encode()


def write_zip(path: Path, xml: bytes, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("apple_health_export/export.xml", xml)
        for name, data in (extra or {}).items():
            zf.writestr(f"apple_health_export/{name}", data)
    return path


def read_all(path: Path, tz: str = "America/New_York") -> dict[str, pl.DataFrame]:
    ctx = FileContext(path, path.name, "f" * 64, UserSettings("u1", tz=tz))
    out: dict[str, list[pl.DataFrame]] = {}
    for table, df in ah.read(ctx):
        out.setdefault(table, []).append(df)
    return {t: pl.concat(dfs) for t, dfs in out.items()}


def sleep_rec(
    value: str,
    start: str,
    end: str,
    addr: str | None = "0x1",
    source: str = "Ann’s Apple Watch",
    tz: str | None = "America/New_York",
) -> str:
    meta = f'<MetadataEntry key="HKTimeZone" value="{tz}"/>' if tz else ""
    return rec(SLEEP, start, end, value, unit="", addr=addr, source=source, children=meta)


# ------------------------------------------------------------------------------------ real data


def _real_exports() -> list[Path]:
    root = shared("apple-health")
    files = sorted(
        p for p in root.rglob("*") if p.suffix in (".xml", ".zip") and "zip_contents" not in p.parts
    )
    return files


@pytest.mark.realdata
def test_every_real_export_ingests_through_the_runner(settings, tmp_path):
    files = _real_exports()
    folder = shared("apple-health", "healthkit-to-sqlite", "tests", "zip_contents")
    packed = tmp_path / "healthkit_export.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    root = shared("apple-health")
    rows: dict[str, dict[str, int]] = {}
    for f in [*files, packed]:
        res = ingest_paths([f], "u1", settings).files
        assert [(r.format, r.status, r.error) for r in res] == [("apple_health", "ingested", "")]
        rows[f.relative_to(root).as_posix() if f != packed else "zip_contents"] = res[0].rows
        if f == packed:  # the workout route has no lake table: skipped, and the report says so
            assert len(res[0].notes) == 1 and "route_2019-06-11_3.00pm.gpx" in res[0].notes[0]
    print(json.dumps(rows, indent=1))
    sleep = {"sleep_episode": 2, "sleep_stage": 2}
    assert rows == {
        "apple-health-analyzer/tests/fixtures/example.xml": {
            "heart_rate": 2,
            "steps": 1,
            "sleep_episode": 1,
            "sleep_stage": 1,
        },
        "apple-health-analyzer/tests/fixtures/export.xml": {
            "heart_rate": 1,
            "hrv": 1,
            "vitals": 1,
            "sleep_episode": 1,
            "sleep_stage": 1,
        },
        "apple-health-parser/tests/data/export.xml": {"heart_rate": 2, **sleep},
        "apple-health-parser/tests/data/export.zip": {"heart_rate": 2, **sleep},
        "healthkit-to-sqlite/tests/export.xml": {"heart_rate": 1, "workout": 1},
        "zip_contents": {"heart_rate": 1, "workout": 1},
    }
    hrv = store.read(settings.lake, "hrv")
    assert hrv["metric"].unique().to_list() == ["sdnn"]
    assert hrv["window"].unique().to_list() == ["spot"]
    assert set(store.read(settings.lake, "heart_rate")["device"]) >= {
        "apple watch watch6,7",
        "apple watch watch2,4",
    }


@pytest.mark.realdata
def test_real_workout_uses_recorded_zone_not_export_zone():
    """The export writes -0700 (PDT, export day); HKTimeZone says mid-November LA, i.e. PST."""
    xml = shared("apple-health", "healthkit-to-sqlite", "tests", "export.xml")
    w = read_all(xml)["workout"].row(0, named=True)
    assert w["activity"] == "running"
    assert w["start_utc"] == datetime(2016, 11, 14, 14, 25, 41, tzinfo=UTC)
    assert (w["utc_offset_min"], w["tz_name"], w["tz_source"]) == (
        -480,
        "America/Los_Angeles",
        "record",
    )
    assert w["distance_m"] == pytest.approx(0.4971749504535062 * 1609.344)
    assert w["energy_kcal"] == pytest.approx(48.745)
    assert w["duration_min"] == pytest.approx(5.1941, abs=1e-3)


@pytest.mark.realdata
def test_real_zip_is_claimed_whole_and_sniffed():
    z = shared("apple-health", "apple-health-parser", "tests", "data", "export.zip")
    assert detect(z, read_head(z)) is ah
    t = read_all(z)
    assert t["heart_rate"]["device"].unique().to_list() == ["apple watch watch6,7"]
    assert sorted(t["sleep_stage"]["stage"]) == ["in_bed", "light"]


# ------------------------------------------------------------------------------- crafted quirks


def test_ios16_dtd_and_control_characters_parse(tmp_path):
    body = rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=72, source="Ann\x0bs Watch")
    body += rec(
        f"{HK}StepCount",
        "2023-03-04 08:00:00 -0500",
        "2023-03-04 08:10:00 -0500",
        value="\x0b812",
        unit="count",
    )
    raw = export_xml(body, IOS16_DTD)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(raw)  # the crafted input really is broken for a strict parser
    path = write_zip(tmp_path / "export.zip", raw)
    t = read_all(path)
    assert t["heart_rate"]["bpm"].to_list() == [72.0]
    assert t["steps"]["steps"].to_list() == [812.0]
    hr = t["heart_rate"].row(0, named=True)
    assert hr["start_utc"] == datetime(2023, 3, 4, 13, 1, 2, tzinfo=UTC)
    assert (hr["utc_offset_min"], hr["tz_source"]) == (-300, "record")


def test_clean_stream_survives_tiny_reads_and_control_only_chunks(tmp_path):
    raw = export_xml(
        "\x0b" * 5000 + rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=61), IOS16_DTD
    )
    path = tmp_path / "export.xml"
    path.write_bytes(raw)
    with path.open("rb") as fh:
        s = ah.CleanStream(fh, chunk=7)
        parts = []
        while chunk := s.read(3):
            parts.append(chunk)
    out = b"".join(parts)
    assert b"\x0b" not in out and b"DOCTYPE" not in out
    assert etree.fromstring(out).find("Record").get("value") == "61"


def test_truncated_export_raises_read_error_and_is_quarantined(tmp_path, settings):
    raw = export_xml(rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=72))[:-40]
    path = write_zip(tmp_path / "export.zip", raw)
    with pytest.raises(ReadError, match="not a readable Apple Health"):
        read_all(path)
    res = ingest_paths([path], "u1", settings).files
    assert [(r.format, r.status) for r in res] == [("apple_health", "quarantined")]


def test_sniff_by_content(tmp_path):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("data/export.xml", "<x/>")
    assert not ah.sniff(other, read_head(other))
    bare = tmp_path / "renamed.dat"
    bare.write_bytes(export_xml(""))
    assert ah.sniff(bare, read_head(bare))
    assert not ah.sniff(bare, b"<?xml version='1.0'?><ClinicalDocument>")


def test_cda_ecg_and_routes_are_skipped_and_logged(tmp_path, caplog):
    xml = export_xml(rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=72))
    path = write_zip(
        tmp_path / "export.zip",
        xml,
        {
            "export_cda.xml": b"<ClinicalDocument/>",
            "electrocardiograms/ecg_2023-03-04.csv": b"Name,Ann\n",
            "workout-routes/route_2023-03-04.gpx": b"<gpx/>",
        },
    )
    with caplog.at_level("INFO", logger=ah.__name__):
        t = read_all(path)
    assert list(t) == ["heart_rate"]
    assert "skipped 3 member(s)" in caplog.text


# ------------------------------------------------------------------------------------- mapping


def test_quantities_map_to_tables_and_units(tmp_path):
    s = "2023-03-04 07:00:00 -0500"
    body = "".join(
        [
            rec(f"{HK}RestingHeartRate", s, value=52),
            rec(f"{HK}RespiratoryRate", s, value=14.5),
            rec(f"{HK}OxygenSaturation", s, value=0.97, unit="%"),
            rec(f"{HK}AppleSleepingWristTemperature", s, value=35.4, unit="degC"),
            rec(f"{HK}BodyMass", s, value=154.3, unit="lb", addr=None, source="Health"),
            rec(f"{HK}WalkingHeartRateAverage", s, value=99),
            rec(f"{HK}ActiveEnergyBurned", s, value=3, unit="kcal"),
        ]
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    t = read_all(path)
    assert set(t) == {"vitals"}
    v = {r["metric"]: (round(r["value"], 2), r["unit"]) for r in t["vitals"].iter_rows(named=True)}
    assert v == {
        "resting_hr": (52, "bpm"),
        "respiration_rate": (14.5, "rpm"),
        "spo2": (97.0, "%"),
        "skin_temp": (35.4, "degC"),
        "weight": (69.99, "kg"),
    }
    assert t["vitals"].filter(pl.col("metric") == "weight")["device"].item() == "health"


def test_heart_rate_in_count_per_second_is_converted(tmp_path):
    s = "2023-03-04 07:00:00 -0500"
    body = rec(f"{HK}HeartRate", s, value=72) + rec(
        f"{HK}HeartRate",
        "2023-03-04 07:01:00 -0500",
        value=1.2,
        unit="count/s",
        addr=None,
        source="Some App",
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    assert sorted(read_all(path)["heart_rate"]["bpm"].to_list()) == [72.0, 72.0]


def test_hrv_stays_sdnn_and_beats_become_rr_intervals(tmp_path):
    beats = "".join(
        f'<InstantaneousBeatsPerMinute bpm="{b}" time="{t}"/>'
        for b, t in [(60, "11:59:58.50 PM"), (75, "11:59:59.30\u202fPM"), (50, "12:00:00.50 AM")]
    )
    lst = f"<HeartRateVariabilityMetadataList>{beats}</HeartRateVariabilityMetadataList>"
    body = rec(
        f"{HK}HeartRateVariabilitySDNN",
        "2023-03-04 23:59:58 -0500",
        "2023-03-05 00:00:58 -0500",
        value=48.2,
        unit="ms",
        children=lst,
    )
    body += rec(
        f"{HK}HeartRateVariabilitySDNN",
        "2023-03-05 14:00:00 +0100",
        "2023-03-05 14:01:00 +0100",
        value=30,
        unit="ms",
        children=(
            '<HeartRateVariabilityMetadataList><InstantaneousBeatsPerMinute bpm="80" '
            'time="14:00:01.25"/></HeartRateVariabilityMetadataList>'
        ),
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    t = read_all(path)
    hrv = t["hrv"].sort("start_utc")
    assert hrv.select("metric", "window", "value_ms").rows() == [
        ("sdnn", "spot", 48.2),
        ("sdnn", "spot", 30.0),
    ]
    rr = t["rr_interval"].sort("start_utc")
    assert rr["rr_ms"].to_list() == pytest.approx([1000.0, 800.0, 1200.0, 750.0])
    assert rr["start_utc"].to_list() == [
        datetime(2023, 3, 5, 4, 59, 58, 500000, tzinfo=UTC),
        datetime(2023, 3, 5, 4, 59, 59, 300000, tzinfo=UTC),
        datetime(2023, 3, 5, 5, 0, 0, 500000, tzinfo=UTC),  # crossed local midnight
        datetime(2023, 3, 5, 13, 0, 1, 250000, tzinfo=UTC),  # 24-hour locale
    ]
    assert rr["utc_offset_min"].to_list() == [-300, -300, -300, 60]


def test_ios16_workout_statistics(tmp_path):
    body = (
        '<Workout workoutActivityType="HKWorkoutActivityTypeTraditionalStrengthTraining" '
        'duration="3600" durationUnit="s" sourceName="Ann’s Apple Watch" device="'
        + WATCH.format(addr="0x9")
        + '" creationDate="2023-03-04 19:00:00 -0500" '
        'startDate="2023-03-04 18:00:00 -0500" endDate="2023-03-04 19:00:00 -0500">'
        '<WorkoutActivity><WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" '
        'average="1" maximum="2" unit="count/min"/></WorkoutActivity>'
        '<WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" sum="1255" '
        'unit="kJ"/><WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" '
        'sum="5.2" unit="km"/><WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" '
        'average="131" minimum="80" maximum="171" unit="count/min"/></Workout>\n'
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    w = read_all(path)["workout"].row(0, named=True)
    assert w["activity"] == "traditional_strength_training"
    assert (w["duration_min"], w["avg_hr"], w["max_hr"], w["distance_m"]) == (60, 131, 171, 5200)
    assert w["energy_kcal"] == pytest.approx(300, abs=0.1)
    assert w["device"] == "apple watch watch6,2"


# ----------------------------------------------------------------------------------------- sleep


def test_legacy_inbed_asleep_night(tmp_path):
    """iOS < 16: InBed from the phone's bedtime, Asleep bouts, same source; one 20-min wake."""
    src = dict(addr=None, source="Ann’s iPhone", tz=None)
    body = "".join(
        [
            sleep_rec(
                f"{SV}InBed", "2022-06-01 22:30:00 -0400", "2022-06-02 06:45:00 -0400", **src
            ),
            sleep_rec(
                f"{SV}Asleep", "2022-06-01 22:50:00 -0400", "2022-06-02 02:00:00 -0400", **src
            ),
            sleep_rec("1", "2022-06-02 02:20:00 -0400", "2022-06-02 06:30:00 -0400", **src),
            # afternoon nap the next day: its own episode, not the main sleep
            sleep_rec(
                f"{SV}Asleep", "2022-06-02 14:00:00 -0400", "2022-06-02 14:40:00 -0400", **src
            ),
        ]
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    t = read_all(path)
    ep = t["sleep_episode"].sort("start_utc")
    assert ep.height == 2
    night = ep.row(0, named=True)
    assert night["sleep_date"] == date(2022, 6, 2)
    assert night["is_main_sleep"] is True
    assert night["tib_min"] == 495
    assert night["tst_min"] == 190 + 250
    assert night["sol_min"] == 20
    assert night["waso_min"] == 20
    assert night["awakenings"] == 1
    assert night["efficiency_pct"] == pytest.approx(440 / 495 * 100)
    assert night["night_rule"] == "noon-split/v1"
    assert night["device"] == "iphone"  # the owner's name is not kept
    nap = ep.row(1, named=True)
    assert (nap["sleep_date"], nap["is_main_sleep"], nap["tst_min"]) == (
        date(2022, 6, 2),
        False,
        40,
    )
    st = t["sleep_stage"]
    assert sorted(st["stage"]) == ["asleep", "asleep", "asleep", "in_bed"]
    assert st.filter(pl.col("start_utc") < datetime(2022, 6, 2, 12, tzinfo=UTC))[
        "episode_id"
    ].unique().to_list() == [night["record_id"]]


def test_ios16_staged_night(tmp_path):
    watch = dict(addr="0x1")
    stages = [
        (f"{SV}AsleepCore", "23:10", "23:40"),
        (f"{SV}AsleepDeep", "23:40", "00:30"),
        (f"{SV}AsleepREM", "00:30", "01:00"),
        (f"{SV}Awake", "01:00", "01:03"),
        (f"{SV}AsleepCore", "01:03", "03:00"),
        (f"{SV}Awake", "03:00", "03:12"),
        (f"{SV}AsleepUnspecified", "03:12", "06:30"),
    ]
    body = sleep_rec(
        f"{SV}InBed",
        "2023-03-04 23:00:00 -0500",
        "2023-03-05 06:40:00 -0500",
        addr=None,
        source="Ann’s iPhone",
    )
    for value, a, b in stages:
        d1 = "2023-03-04" if a >= "12:00" else "2023-03-05"
        d2 = "2023-03-04" if b >= "12:00" else "2023-03-05"
        body += sleep_rec(value, f"{d1} {a}:00 -0500", f"{d2} {b}:00 -0500", **watch)
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    t = read_all(path)
    ep = t["sleep_episode"]
    # The iPhone's InBed and the Watch's stages are one night, as the Health app shows it.
    assert ep.height == 1
    w = ep.row(0, named=True)
    assert w["device"] == "apple watch watch6,2"
    assert w["tib_min"] == 7 * 60 + 40  # 23:00-06:40 in bed
    assert w["tst_min"] == 7 * 60 + 20 - 15
    assert (w["sol_min"], w["waso_min"], w["awakenings"]) == (10, 15, 1)
    assert (w["sleep_date"], w["is_main_sleep"]) == (date(2023, 3, 5), True)
    assert w["tz_name"] == "America/New_York" and w["utc_offset_min"] == -300
    st = t["sleep_stage"].sort("start_utc")
    assert st.filter(pl.col("device") != "iphone")["stage"].to_list() == [
        "light",
        "deep",
        "rem",
        "awake",
        "light",
        "awake",
        "asleep",
    ]
    assert st["episode_id"].unique().to_list() == ep["record_id"].to_list()
    assert st.filter(pl.col("stage") == "in_bed")["device"].to_list() == ["iphone"]


def test_sleep_episode_split_on_60_min_gap_and_batches_do_not_cut_nights(tmp_path, monkeypatch):
    monkeypatch.setattr(ah, "BATCH_ROWS", 2)
    body = "".join(
        [
            sleep_rec(f"{SV}AsleepCore", "2023-03-05 01:00:00 -0500", "2023-03-05 02:00:00 -0500"),
            sleep_rec(f"{SV}AsleepCore", "2023-03-05 02:59:00 -0500", "2023-03-05 04:00:00 -0500"),
            sleep_rec(f"{SV}AsleepCore", "2023-03-05 05:00:00 -0500", "2023-03-05 06:00:00 -0500"),
            *(
                rec(f"{HK}HeartRate", f"2023-03-05 0{i}:00:00 -0500", value=50 + i)
                for i in range(5)
            ),
        ]
    )
    path = tmp_path / "export.xml"
    path.write_bytes(export_xml(body))
    ctx = FileContext(path, path.name, "f" * 64, UserSettings("u1"))
    batches = list(ah.read(ctx))
    assert [df.height for t, df in batches if t == "heart_rate"] == [2, 2, 1]
    ep = pl.concat([df for t, df in batches if t == "sleep_episode"]).sort("start_utc")
    assert ep["tib_min"].to_list() == [180, 60]  # a 59-min gap joins, a 60-min gap splits
    assert ep["is_main_sleep"].to_list() == [True, False]


# --------------------------------------------------------------------------------------- devices


def test_device_address_does_not_change_record_ids(tmp_path):
    def export(addr: str) -> bytes:
        return export_xml(
            "".join(
                [
                    rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=72, addr=addr),
                    rec(
                        f"{HK}HeartRateVariabilitySDNN",
                        "2023-03-04 08:05:00 -0500",
                        value=40,
                        unit="ms",
                        addr=addr,
                    ),
                    sleep_rec(
                        f"{SV}AsleepCore",
                        "2023-03-04 01:00:00 -0500",
                        "2023-03-04 06:00:00 -0500",
                        addr=addr,
                    ),
                ]
            )
        )

    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes(export("0x283c8f1b0"))
    b.write_bytes(export("0x3012772a0"))
    assert a.read_bytes() != b.read_bytes()
    ta, tb = read_all(a), read_all(b)
    assert set(ta) == set(tb) == {"heart_rate", "hrv", "sleep_episode", "sleep_stage"}
    for table in ta:
        assert ta[table]["record_id"].to_list() == tb[table]["record_id"].to_list()
        assert ta[table]["device"].unique().to_list() == ["apple watch watch6,2"]


def test_two_exports_of_one_account_upsert_without_duplicates(tmp_path, settings):
    body = rec(f"{HK}HeartRate", "2023-03-04 08:01:02 -0500", value=72, addr="0xaaa")
    first = write_zip(tmp_path / "first.zip", export_xml(body))
    second_body = body.replace("0xaaa", "0xbbb") + rec(
        f"{HK}HeartRate", "2023-03-04 08:02:02 -0500", value=74, addr="0xbbb"
    )
    second = write_zip(tmp_path / "second.zip", export_xml(second_body))
    ingest_paths([first], "u2", settings)
    ingest_paths([second], "u2", settings)
    hr = store.read(settings.lake, "heart_rate")
    assert hr["bpm"].sort().to_list() == [72.0, 74.0]


# ------------------------------------------------------------------------------------- streaming

_RSS_PROBE = """
import resource, sys
from pathlib import Path
from tunewell.ingest.base import FileContext
from tunewell.ingest.formats import apple_health as ah
from tunewell.settings import UserSettings
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ctx = FileContext(Path(sys.argv[1]), "big", "f" * 64, UserSettings("u1"))
rows, biggest = {}, 0
for table, df in ah.read(ctx):
    rows[table] = rows.get(table, 0) + df.height
    biggest = max(biggest, df.height)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows["heart_rate"], rows["steps"], biggest, (after - before) // 1024)
"""


@pytest.mark.slow
def test_big_export_streams_with_bounded_memory(tmp_path):
    n = 300_000
    path = tmp_path / "export.zip"
    row = (
        f'<Record type="{HK}HeartRate" sourceName="Ann’s Apple Watch" sourceVersion="9.1" '
        f'device="{WATCH.format(addr="0x283c8f1b0")}" unit="count/min" '
        'creationDate="{t}" startDate="{t}" endDate="{t}" value="{v}">'
        '<MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/></Record>\n'
    )
    steps = (
        f'<Record type="{HK}StepCount" sourceName="Ann’s iPhone" unit="count" '
        'startDate="{t}" endDate="{t}" value="12"/>\n'
    )
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("apple_health_export/export.xml", "w") as fh,
    ):
        fh.write(export_xml("", IOS16_DTD).rsplit(b"</HealthData>", 1)[0])
        base = datetime(2023, 1, 1).timestamp()
        for start in range(0, n, 10_000):
            chunk = []
            for i in range(start, start + 10_000):
                t = datetime.fromtimestamp(base + i * 5).strftime("%Y-%m-%d %H:%M:%S +0000")
                chunk.append((steps if i % 10 == 0 else row).format(t=t, v=50 + i % 60))
            fh.write("".join(chunk).encode())
        fh.write(b"</HealthData>\n")
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    hr, st, biggest, growth_mb = map(int, out.stdout.split())
    assert (hr, st) == (n - n // 10, n // 10)
    assert biggest <= min(ah.BATCH_ROWS, 200_000)
    assert growth_mb < 250, growth_mb  # measured ~130 MB for this 138 MB XML


# ------------------------------------------------------------------------------------- synth


def test_synthetic_export_matches_its_ground_truth(tmp_path):
    people = pytest.importorskip("tunewell.synth.people")
    synth = pytest.importorskip("tunewell.synth.apple_health")
    zones = pytest.importorskip("tunewell.synth.zones")
    pop = people.simulate(n_users=2, days=21, seed=3)
    person = pop.people[1]
    path = synth.write_apple(pop, person, tmp_path / "inbox")
    assert detect(path, read_head(path)) is ah
    ctx = FileContext(path, path.name, "f" * 64, zones.user_settings(pop, person))
    t: dict[str, pl.DataFrame] = {}
    for table, df in ah.read(ctx):
        t[table] = pl.concat([t[table], df]) if table in t else df
    truth = pop.nights.filter(pl.col("user_id") == person.user_id)
    ep = t["sleep_episode"]
    night = ep.join(truth, on="sleep_date", suffix="_true")
    assert night.height == ep.height == truth.height == 21  # one episode per night
    assert night["device"].str.contains("watch").all()
    assert (night["tst_min"] - night["tst_min_true"]).abs().max() < 0.01
    assert ((night["start_utc"] == night["bed_utc"]) & (night["end_utc"] == night["out_utc"])).all()
    assert ep.filter(pl.col("is_main_sleep"))["sleep_date"].n_unique() == 21
    assert t["hrv"]["metric"].unique().to_list() == ["sdnn"]
    assert t["rr_interval"]["rr_ms"].is_between(300, 2000).mean() > 0.95
    wk = pop.workouts.filter(pl.col("user_id") == person.user_id)
    got = t["workout"].join(wk, on="start_utc", suffix="_true")
    assert got.height == wk.height > 0
    assert (got["rpe"] == got["rpe_true"]).all()
    assert (got["activity"] == got["activity_true"]).all()
    # sleep vitals: breathing and SpO2 (fraction -> %) asleep, one absolute wrist temperature
    v = t["vitals"].join_where(
        truth.select("sleep_date", "onset_utc", "wake_utc", "resp_rate", "spo2_pct", "skin_temp_c"),
        pl.col("start_utc") >= pl.col("onset_utc"),
        pl.col("start_utc") < pl.col("wake_utc"),
    )
    resp = v.filter(pl.col("metric") == "respiration_rate")
    assert resp.height > 21 * 10 and (resp["value"] - resp["resp_rate"]).abs().max() < 2.5
    spo2 = v.filter(pl.col("metric") == "spo2")
    assert spo2.height > 21 * 5 and spo2["value"].is_between(85, 100).all()
    temp = v.filter(pl.col("metric") == "skin_temp")
    assert temp.height == 21 and (temp["value"] - temp["skin_temp_c"]).abs().max() < 0.006
    assert set(temp["unit"]) == {"degC"}


def test_device_names_drop_the_owner_and_odd_spaces():
    from tunewell.ingest.formats.apple_health import _device_expr

    df = pl.DataFrame(
        {
            "device_raw": [
                None,
                None,
                "<<HKDevice: 0x1>, name:Apple\u00a0Watch, hardware:Watch6,2>",
            ],
            "source_name": ["Alexandre's iPhone", "Sleep Cycle", "x"],
        }
    )
    assert df.select(_device_expr())["device"].to_list() == [
        "iphone",
        "sleep cycle",
        "apple watch watch6,2",
    ]
