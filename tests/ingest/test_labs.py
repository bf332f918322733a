"""Lab results: FHIR (spec examples and a portal Bundle), Apple clinical records, lab CSV, MMASH."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.base import FileContext
from tunewell.ingest.formats import apple_health, fhir, lab_csv, mmash_saliva
from tunewell.ingest.registry import detect, read_head, readers
from tunewell.ingest.runner import ingest_paths
from tunewell.lake import manifest
from tunewell.lake.schemas import table
from tunewell.lake.store import read
from tunewell.settings import UserSettings
from tunewell.synth import labs as synth_labs

DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"
LAB_READERS = (fhir, lab_csv, mmash_saliva)


def _utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _rows(settings, user: str = "u1") -> pl.DataFrame:
    return read(settings.lake, "lab_result", [user]).sort("start_utc", "code", "name")


# ------------------------------------------------------------------------ reader contract


@pytest.mark.parametrize("mod", LAB_READERS, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_reader_contract(mod):
    assert mod in readers()
    assert isinstance(mod.SOURCE, str) and mod.SOURCE
    assert isinstance(mod.PRIORITY, int)
    assert callable(mod.sniff) and callable(mod.read)


@pytest.mark.parametrize(
    ("path", "mod"),
    [
        (DATA / "observation-f001-glucose.json", fhir),
        (DATA / "bundle-portal.json", fhir),
        (DATA / "diagnosticreport-lipids.json", fhir),
    ],
)
def test_detected_by_content(path, mod, tmp_path):
    renamed = tmp_path / "download.txt"  # the name says nothing
    renamed.write_bytes(path.read_bytes())
    assert detect(renamed, read_head(renamed)) is mod


def test_lab_columns_are_in_the_dictionary():
    t = table("lab_result")
    expected = {
        "code",
        "code_system",
        "name",
        "value",
        "unit",
        "value_text",
        "reference_low",
        "reference_high",
        "reference_text",
        "interpretation",
        "specimen",
        "collected_utc",
        "status",
        "source_document",
    }
    assert expected <= set(t.names)
    assert all(t.col(c).meaning for c in t.names)


# ------------------------------------------------------------------------ FHIR spec examples


def test_spec_glucose_observation(settings):
    rep = ingest_paths([DATA / "observation-f001-glucose.json"], "u1", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    r = _rows(settings).row(0, named=True)
    assert (r["code"], r["code_system"], r["value"], r["unit"]) == (
        "15074-8",
        "http://loinc.org",
        6.3,
        "mmol/L",
    )
    assert (r["reference_low"], r["reference_high"], r["interpretation"]) == (3.1, 6.2, "H")
    # effectivePeriod.start 2013-04-02T09:30:10+01:00: the offset is the record's own
    assert r["start_utc"] == _utc(2013, 4, 2, 8, 30, 10)
    assert (r["utc_offset_min"], r["tz_source"]) == (60, "record")
    assert r["collected_utc"] == r["start_utc"]
    assert r["source_document"] == "observation-f001-glucose.json#Observation/f001"
    assert r["source"] == "fhir" and r["status"] == "final"


def test_diagnostic_report_with_contained_results(settings):
    ingest_paths([DATA / "diagnosticreport-lipids.json"], "u1", settings)
    df = _rows(settings)
    assert df["code"].to_list() == ["13457-7", "2085-9", "35200-5", "35217-9"]
    assert df["start_utc"].unique().to_list() == [_utc(2011, 3, 3, 21, 30)]  # 08:30 +11:00
    hdl = df.filter(pl.col("code") == "2085-9").row(0, named=True)
    assert (hdl["reference_low"], hdl["reference_high"]) == (1.5, None)
    assert hdl["source_document"].endswith("#DiagnosticReport/lipids/Observation/hdlcholesterol")


def test_lab_rows_owe_the_gold_refresh_nothing(settings):
    # a 2011 report must not make the nightly refresh recompute every night since 2011
    rep = ingest_paths([DATA / "diagnosticreport-lipids.json"], "u1", settings)
    assert rep.files[0].rows == {"lab_result": 4}
    assert rep.changed_dates == {} and manifest.pending(settings.lake) == {}


def test_query_view(settings):
    from tunewell.lake.query import run_query

    sql = "select code, value, unit from lab_result order by code"
    assert run_query(settings.lake, sql).is_empty()  # an empty table is still a view
    ingest_paths([DATA / "observation-f001-glucose.json"], "u1", settings)
    assert run_query(settings.lake, sql).rows() == [("15074-8", 6.3, "mmol/L")]


def test_vital_signs_panel_is_skipped_with_a_note(settings):
    rep = ingest_paths([DATA / "observation-blood-pressure.json"], "u1", settings)
    f = rep.files[0]
    assert f.status == "ingested" and not f.rows
    assert any("non-laboratory" in n and "vital-signs" in n for n in f.notes)


def test_portal_bundle(settings):
    rep = ingest_paths([DATA / "bundle-portal.json"], "u1", settings)
    f = rep.files[0]
    assert f.rows == {"lab_result": 6}, f.error
    notes = " ".join(f.notes)
    assert "Condition ×1" in notes and "Patient ×1" in notes and "vital-signs ×1" in notes
    assert "Observation/not-in-this-file" in notes
    df = _rows(settings)
    by = {r["code"]: r for r in df.iter_rows(named=True)}
    assert set(by) == {"2276-4", "3016-3", "4548-4", "5196-1", "5778-6", "1988-5"}
    ferritin = by["2276-4"]
    assert (ferritin["value"], ferritin["unit"], ferritin["interpretation"]) == (18, "ng/mL", "L")
    assert ferritin["specimen"] == "serum"
    assert ferritin["collected_utc"] == _utc(2026, 2, 3, 12, 55)  # Specimen.collection, -05:00
    # referenced by fullUrl (urn:uuid), no time of its own: the report's time and specimen
    tsh = by["3016-3"]
    assert (tsh["value"], tsh["unit"], tsh["reference_low"], tsh["reference_high"]) == (
        2.1,
        "m[IU]/L",
        0.4,
        4.0,
    )
    assert tsh["specimen"] == "serum" and tsh["start_utc"] == _utc(2026, 2, 3, 12, 55)
    assert "DiagnosticReport/r1" in tsh["source_document"]
    hba1c = by["4548-4"]  # effectivePeriod
    assert (hba1c["start_utc"], hba1c["end_utc"]) == (
        _utc(2026, 2, 3, 12, 50),
        _utc(2026, 2, 3, 13, 10),
    )
    assert (hba1c["reference_high"], hba1c["reference_text"]) == (5.7, "<5.7 %")
    assert (by["5196-1"]["value"], by["5196-1"]["value_text"]) == (None, "Negative")
    assert by["5196-1"]["reference_text"] == "Negative"
    assert (by["5778-6"]["value_text"], by["5778-6"]["status"]) == ("Yellow", "preliminary")
    # a "<0.5" result is not the number 0.5
    assert (by["1988-5"]["value"], by["1988-5"]["value_text"]) == (None, "<0.5")
    assert (df["utc_offset_min"] == -300).all() and (df["tz_source"] == "record").all()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("observation-broken-value.json", "valueQuantity.value: expected a number, got '18'"),
        ("bundle-broken-status.json", "Observation/no-status: status is required"),
        ("observation-truncated.json", "not JSON"),
    ],
)
def test_broken_fhir_is_quarantined_with_its_reason(settings, name, reason):
    rep = ingest_paths([DATA / name], "u1", settings)
    f = rep.files[0]
    assert f.status == "quarantined" and reason in f.error and name in f.error
    assert f.format == "fhir"
    q = json.loads((settings.lake / "quarantine").glob(f"*-{name}.json").__next__().read_text())
    assert reason in q["error"]
    assert read(settings.lake, "lab_result", ["u1"]).is_empty()  # nothing of it half-ingested


def test_shape_rules_one_by_one():
    ctx = FileContext(Path("x.json"), "x.json", "0" * 64, UserSettings("u1", tz="UTC"))
    ok = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Ferritin"},
        "effectiveDateTime": "2026-01-02T08:00:00Z",
    }
    bad = {
        "more than one value": {"valueString": "a", "valueQuantity": {"value": 1}},
        "obs-3": {"valueQuantity": {"value": 1}, "referenceRange": [{"type": {}}]},
        "not an Observation status": {"status": "done", "valueString": "a"},
        "not a date/time": {"effectiveDateTime": "02/01/2026", "valueString": "a"},
        "not one of <": {"valueQuantity": {"value": 1, "comparator": "~"}},
        "expected a JSON array": {"code": {"coding": {"code": "x"}}, "valueString": "a"},
        "more than one effective": {
            "effectivePeriod": {"start": "2026-01-02T09:00:00Z"},
            "valueString": "a",
        },
    }
    for why, patch in bad.items():
        with pytest.raises(fhir.FhirShapeError, match=why):
            fhir.Extractor(ctx, "x.json").document({**ok, **patch})
    period = {k: v for k, v in ok.items() if k != "effectiveDateTime"}
    with pytest.raises(fhir.FhirShapeError, match="end before start"):
        fhir.Extractor(ctx, "x.json").document(
            {
                **period,
                "effectivePeriod": {"start": "2026-01-02T09:00:00Z", "end": "2026-01-02T08:00Z"},
                "valueString": "a",
            }
        )
    ex = fhir.Extractor(ctx, "x.json")
    ex.document({**ok, "valueQuantity": {"value": 20, "unit": "ng/mL"}})
    assert ex.rows[0].value == 20 and ex.rows[0].unit == "ng/mL"


def test_date_only_and_local_times_follow_the_user_zone():
    ctx = FileContext(Path("x"), "x", "0" * 64, UserSettings("u1", tz="Europe/Berlin"))
    from tunewell.ingest.lab_rows import parse_time

    assert parse_time("2026-03-15", ctx).utc == _utc(2026, 3, 14, 23)
    assert parse_time("2026-07-15T08:00:00", ctx).utc == _utc(2026, 7, 15, 6)
    t = parse_time("2026-07-15T08:00:00.250-04:00", ctx)
    assert (t.utc, t.offset_min) == (_utc(2026, 7, 15, 12, 0, 0, 250_000), -240)


def test_reingest_changes_nothing(settings):
    files = [DATA / "bundle-portal.json", DATA / "diagnosticreport-lipids.json"]
    ingest_paths(files, "u1", settings)
    before = _rows(settings)
    rep = ingest_paths(files, "u1", settings)
    assert {f.status for f in rep.files} == {"already_seen"}
    # even when the files are read again (a copy under another name)
    copy = settings.lake.parent / "again"
    copy.mkdir()
    for f in files:
        (copy / f"copy-{f.name}").write_bytes(f.read_bytes() + b"\n")
    ingest_paths([copy], "u1", settings)
    after = _rows(settings)
    assert after.height == before.height == 10
    assert after["record_id"].sort().to_list() == before["record_id"].sort().to_list()


# ------------------------------------------------------------------------ Apple clinical records


def _apple_export(tmp_path: Path, extra: dict[str, bytes] | None = None) -> tuple[Path, object]:
    people = pytest.importorskip("tunewell.synth.people")
    apple = pytest.importorskip("tunewell.synth.apple_health")
    pop = people.simulate(n_users=1, days=5, seed=4)
    path = apple.write_apple(pop, pop.people[0], tmp_path / "apple")
    clinical = synth_labs.apple_clinical_records(date(2026, 1, 6))
    synth_labs.add_members(path, {**clinical.members, **(extra or {})})
    return path, clinical


def test_apple_export_with_clinical_records(settings, tmp_path):
    path, clinical = _apple_export(tmp_path)
    assert detect(path, read_head(path)) is apple_health
    rep = ingest_paths([path], "u1", settings)
    f = rep.files[0]
    assert f.status == "ingested", f.error
    assert f.rows["lab_result"] == clinical.lab_rows == 8
    assert f.rows.get("sleep_episode", 0) > 0  # the export's own data as before
    note = next(n for n in f.notes if n.startswith("clinical records"))
    assert "8 file(s), 8 lab result(s)" in note
    assert "AllergyIntolerance ×1" in note and "Observation (vital-signs) ×1" in note
    df = _rows(settings)
    assert set(df["source"]) == {"apple_health"}
    ferritin = df.filter(pl.col("code") == "2276-4").sort("start_utc")
    # the DSTU2 record (single CodeableConcept interpretation) and the R4 one
    assert ferritin["value"].to_list() == [24, 41]
    assert ferritin["interpretation"].to_list() == ["L", "N"]
    assert ferritin["start_utc"][0] == _utc(2026, 1, 6, 13, 15)  # 08:15 -05:00
    assert (ferritin["reference_low"] == 30).all() and (ferritin["reference_high"] == 400).all()
    panel = df.filter(pl.col("code").is_in(["2093-3", "2085-9", "2571-8"]))
    assert panel.height == 3 and panel["source_document"].str.contains("component").all()
    chol = panel.filter(pl.col("code") == "2093-3").row(0, named=True)
    assert (chol["value"], chol["unit"], chol["reference_high"], chol["interpretation"]) == (
        212,
        "mg/dL",
        200,
        "H",
    )
    assert chol["reference_text"] == "<200 mg/dL"
    vit_d = df.filter(pl.col("code") == "62292-8").row(0, named=True)
    assert vit_d["reference_low"] is None and vit_d["reference_high"] is None
    assert df.filter(pl.col("code") == "5196-1")["value_text"].to_list() == ["Not detected"]
    assert ingest_paths([path], "u1", settings).files[0].status == "already_seen"
    assert _rows(settings).equals(df)


def test_a_broken_clinical_record_is_reported_not_fatal(settings, tmp_path):
    bad = {"apple_health_export/clinical-records/Observation-BAD.json": b'{"resourceType": "Ob'}
    path, _ = _apple_export(tmp_path, bad)
    rep = ingest_paths([path], "u1", settings)
    f = rep.files[0]
    assert f.status == "ingested" and f.rows["lab_result"] == 8
    assert any("Observation-BAD.json" in n and "not JSON" in n for n in f.notes)


def test_clinical_members_only_from_the_clinical_folder():
    names = [
        "apple_health_export/export.xml",
        "apple_health_export/clinical-records/Observation-1.json",
        "__MACOSX/apple_health_export/clinical-records/._Observation-1.json",
        "apple_health_export/electrocardiograms/ecg.csv",
    ]
    assert fhir.clinical_members(names) == [
        "apple_health_export/clinical-records/Observation-1.json"
    ]


# ------------------------------------------------------------------------ lab CSV


def test_lab_csv(settings, tmp_path):
    path = synth_labs.write_lab_csv(tmp_path / "labs" / "results.csv", date(2026, 3, 2))
    assert detect(path, read_head(path)) is lab_csv
    rep = ingest_paths([path], "u1", settings)
    assert rep.files[0].rows == {"lab_result": 5}, rep.files[0].error
    df = _rows(settings)
    tsh = df.filter(pl.col("code") == "3016-3").row(0, named=True)
    assert (tsh["code_system"], tsh["value"], tsh["unit"]) == ("http://loinc.org", 4.9, "m[IU]/L")
    assert (tsh["reference_low"], tsh["reference_high"], tsh["interpretation"]) == (0.4, 4.0, "H")
    assert tsh["start_utc"] == _utc(2026, 3, 2, 6, 10) and tsh["tz_source"] == "record"
    saliva = df.filter(pl.col("specimen") == "saliva")
    assert saliva["code"].is_null().all() and saliva["code_system"].is_null().all()
    assert saliva["name"].unique().to_list() == ["Cortisol (saliva)"]
    hbsag = df.filter(pl.col("code") == "5196-1").row(0, named=True)
    assert (hbsag["value"], hbsag["value_text"]) == (None, "negative")
    assert hbsag["start_utc"] == _utc(2026, 3, 2, 23)  # a date alone: local midnight in Berlin
    assert hbsag["tz_source"] == "user_setting"
    assert ingest_paths([path], "u1", settings).files[0].status == "already_seen"


def test_lab_csv_row_without_a_date_is_refused(settings, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("date,name,value,unit\n2026-03-02,Ferritin,38,ng/mL\nlast week,TSH,2,mIU/L\n")
    f = ingest_paths([path], "u1", settings).files[0]
    assert f.status == "quarantined" and "line 3" in f.error and "last week" in f.error


def test_lab_csv_does_not_claim_other_csvs():
    assert not lab_csv.sniff(Path("x"), b"Date,Step count,Average heart rate (bpm)\n")
    assert not lab_csv.sniff(Path("x"), b",SAMPLES,Cortisol NORM,Melatonin NORM\n")
    assert lab_csv.sniff(Path("x"), b"Collected;Test;Result;Units;Ref_Low;Ref_High\n")


# ------------------------------------------------------------------------ MMASH saliva (real)


@pytest.mark.realdata
def test_mmash_saliva_real(settings):
    path = shared("mmash", "user_1", "saliva.csv")
    assert detect(path, read_head(path)) is mmash_saliva
    rep = ingest_paths([path], "u1", settings, options={"start_date": date(2017, 3, 6)})
    assert rep.files[0].rows == {"lab_result": 4}, rep.files[0].error
    df = _rows(settings)
    raw = pl.read_csv(path)
    cort = df.filter(pl.col("name") == "Cortisol NORM").sort("start_utc")
    assert cort["value"].to_list() == pytest.approx(raw["Cortisol NORM"].to_list())
    # in bed day 2 00:46 and out of bed 07:30 (sleep.csv), Berlin UTC+1 in March
    assert cort["start_utc"].to_list() == [_utc(2017, 3, 6, 23, 46), _utc(2017, 3, 7, 6, 30)]
    assert set(df["specimen"]) == {"saliva"} and df["reference_low"].is_null().all()
    assert df["code"].is_null().all()  # no code is given, none invented
    mel = df.filter(pl.col("name") == "Melatonin NORM").sort("start_utc")
    assert mel["value"].to_list() == pytest.approx(raw["Melatonin NORM"].to_list())
    again = ingest_paths([path], "u1", settings, options={"start_date": date(2017, 3, 6)})
    assert again.files[0].status == "already_seen"


@pytest.mark.realdata
def test_mmash_saliva_all_users(settings):
    users = sorted(shared("mmash").glob("user_*/saliva.csv"))
    assert len(users) == 11
    got = {}
    for i, path in enumerate(users):
        rep = ingest_paths([path], f"m{i}", settings, options={"start_date": date(2017, 3, 6)})
        got[path.parent.name] = rep.files[0]
    quarantined = {u for u, f in got.items() if f.status == "quarantined"}
    assert quarantined == {"user_11"}  # its sleep.csv is empty: no time to place the samples
    assert "sleep.csv" in got["user_11"].error
    assert all(f.rows == {"lab_result": 4} for u, f in got.items() if u != "user_11")
    # user_3 went to bed at 22:29 on day 1 (labelled day 1 for both times in sleep.csv); these
    # users have no configured zone, so local time is taken as UTC (tz_source assumed)
    user_3 = f"m{users.index(shared('mmash', 'user_3', 'saliva.csv'))}"
    df = read(settings.lake, "lab_result", [user_3])
    assert sorted(df["start_utc"].unique().to_list()) == [
        _utc(2017, 3, 6, 22, 29),
        _utc(2017, 3, 7, 5, 52),
    ]
    assert set(df["tz_source"]) == {"assumed"}


def test_mmash_saliva_needs_start_date(settings, tmp_path):
    folder = tmp_path / "user_x"
    folder.mkdir()
    (folder / "saliva.csv").write_text(
        ",SAMPLES,Cortisol NORM,Melatonin NORM\n1,before sleep,0.03,1e-08\n2,wake up,0.07,6e-09\n"
    )
    (folder / "sleep.csv").write_text(
        ",In Bed Date,In Bed Time,Out Bed Date,Out Bed Time\n0,1,23:10,2,07:00\n"
    )
    f = ingest_paths([folder / "saliva.csv"], "u1", settings).files[0]
    assert f.status == "quarantined" and "start-date" in f.error
    rep = ingest_paths(
        [folder / "saliva.csv"],
        "u1",
        settings,
        options={"start_date": "2026-01-05"},
        retry_quarantined=True,
    )
    assert rep.files[0].rows == {"lab_result": 4}
    assert manifest.lookup(settings.lake, rep.files[0].sha256, "u1").status == "ingested"
    assert _rows(settings)["start_utc"].unique().sort().to_list() == [
        _utc(2026, 1, 5, 22, 10),
        _utc(2026, 1, 6, 6, 0),
    ]
