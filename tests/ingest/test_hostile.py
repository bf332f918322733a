"""Hostile and broken input: each case is refused with its reason code, the run goes on, and
nothing is written outside the lake."""

from __future__ import annotations

import io
import socket
import zipfile
from pathlib import Path

import pytest

from tunewell.ingest import runner, safety
from tunewell.lake import manifest
from tunewell.settings import Settings
from tunewell.synth.hostile import apple_xml, write_hostile, zip_bomb


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cases = write_hostile(root / "in", bomb_bytes=64 << 20)
    settings = Settings(lake=root / "lake", inbox=root / "inbox")
    real_connect = socket.socket.connect

    def no_network(self, *a, **k):  # a parser that fetched a DTD would fail loudly here
        raise AssertionError(f"network access during ingest: {a}")

    socket.socket.connect = no_network
    try:
        report = runner.ingest_paths([root / "in"], "u1", settings)
    finally:
        socket.socket.connect = real_connect
    return root, cases, settings, report


def _reasons(lake: Path) -> list[manifest.QuarantineReason]:
    return manifest.quarantined(lake)


def test_every_hostile_file_gets_its_code_and_names_the_file(hostile_run):
    _, cases, settings, _ = hostile_run
    reasons = _reasons(settings.lake)
    by_file: dict[str, list[manifest.QuarantineReason]] = {}
    for r in reasons:
        top = Path(r.file.split("!", 1)[0]).name
        by_file.setdefault(top, []).append(r)
    for case in cases:
        got = by_file.get(case.name, [])
        if case.expect is None:
            assert not got, f"{case.name} ({case.what}) was quarantined: {got[0].error}"
            continue
        codes = {r.code for r in got}
        assert case.expect in codes, f"{case.name} ({case.what}): got {codes or 'nothing'}"
        assert all(case.name in r.error for r in got), [r.error for r in got]
    # every reason document carries a known code
    known = {c.value for c in safety.Code}
    assert reasons and all(r.code in known for r in reasons)


def test_safe_members_of_a_hostile_archive_are_ingested(hostile_run):
    _, _, _, report = hostile_run
    status = {f.file.split("/in/", 1)[1]: f.status for f in report.files}
    assert status["zip_slip.zip!export.xml"] == "ingested"
    assert status["zip_duplicate.zip!export.xml"] in ("ingested",)
    assert status["long_line.xml"] == "ingested"
    assert status["control_chars.xml"] == "ingested"


def test_nothing_written_outside_the_lake(hostile_run):
    root, _, settings, _ = hostile_run
    allowed = {root / "in", settings.lake}
    for p in root.iterdir():
        assert p in allowed, f"stray {p}"
    assert not list(root.rglob("evil*.xml"))
    for escaped in ("/evil.xml", "/tmp/evil.xml", "/tmp/evil-win.xml"):
        assert not Path(escaped).exists()
    assert not Path("/tmp/tunewell-evil.xml").exists()


def test_external_entity_is_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-MARKER")
    src = tmp_path / "in" / "xxe.xml"
    src.parent.mkdir()
    src.write_bytes(
        apple_xml(
            extra='<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&x;"/>',
            prolog=f'<!DOCTYPE HealthData [<!ENTITY x SYSTEM "file://{secret}">]>\n',
        )
    )
    settings = Settings(lake=tmp_path / "lake")
    report = runner.ingest_paths([src], "u1", settings)
    assert report.files[0].code == "xml_external_entity"
    for p in settings.lake.rglob("*"):
        if p.is_file():
            assert b"TOPSECRET-MARKER" not in p.read_bytes(), p


def test_zip_bomb_is_refused_before_one_byte_is_inflated(tmp_path, monkeypatch):
    bomb = zip_bomb(tmp_path / "bomb.zip", 32 << 20)

    def never(*a, **k):
        raise AssertionError("a member of the bomb was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    settings = Settings(lake=tmp_path / "lake")
    report = runner.ingest_paths([bomb], "u1", settings)
    (res,) = report.files
    assert res.status == "quarantined" and res.code == "zip_bomb"
    (reason,) = _reasons(settings.lake)
    assert reason.details["bytes_read"] < 64 * 1024
    assert reason.details["declared_bytes"] == 32 << 20


def test_total_size_limit_is_a_setting(tmp_path):
    arc = tmp_path / "big.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("export.xml", apple_xml(200))
    small = safety.Limits(max_total_bytes=1000)
    with pytest.raises(safety.SafetyError) as err:
        safety.inspect_zip(arc, "big.zip", small)
    assert err.value.code == "zip_bomb" and "limit 1,000" in str(err.value)
    assert safety.inspect_zip(arc, "big.zip").members  # the defaults accept it


def test_limits_from_tunewell_toml_reach_the_run(tmp_path):
    """A ``[limits]`` section is what ``stage_file`` applies: the same zip is refused under a
    small configured total and opened under the defaults."""
    from tunewell.settings import load_settings

    arc = tmp_path / "export.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("apple_health_export/export.xml", apple_xml(200))
    cfg = tmp_path / "tunewell.toml"
    cfg.write_text('[lake]\npath = "lake"\n[limits]\nmax_total_bytes = 1000\n')
    small = load_settings(cfg)
    assert small.ingest_limits.max_total_bytes == 1000
    rep = runner.ingest_paths([arc], "u1", small)
    assert [(f.status, f.code) for f in rep.files] == [("quarantined", "zip_bomb")]
    assert "limit 1,000" in rep.files[0].error
    # under the defaults the archive is opened and its rows read (this sample's rows are
    # hostile too, so they meet the row checks instead)
    ok = runner.ingest_paths([arc], "u1", Settings(lake=tmp_path / "lake2"))
    assert [f.code for f in ok.files] == ["rows_failed_validation"]


def test_capped_stream_stops_a_lying_member():
    stream = safety.CappedStream(io.BytesIO(b"x" * 5000), "a.zip!m", cap=1000)
    with pytest.raises(safety.SafetyError) as err:
        while stream.read(300):
            pass
    assert err.value.code == "zip_bomb" and stream.count <= 1001 + 300


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "a\x00b", "$(rm -rf ~)", "a b", ".hidden", "", "x;ls", "..", "a..b"]
)
def test_unsafe_user_ids_are_refused(tmp_path, bad):
    with pytest.raises(safety.UnsafeUserIdError, match="not allowed"):
        safety.check_user_id(bad)
    settings = Settings(lake=tmp_path / "lake")
    f = tmp_path / "x.xml"
    f.write_bytes(apple_xml(2))
    with pytest.raises(safety.UnsafeUserIdError):
        runner.ingest_paths([f], bad, settings)


@pytest.mark.parametrize("ok", ["u1", "p01", "ann.smith", "ann@example.org", "2022484408", "a-b_c"])
def test_ordinary_user_ids_pass(ok):
    assert safety.check_user_id(ok) == ok


def test_unsafe_inbox_folder_is_reported_and_writes_nothing(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "bad;rm -rf").mkdir(parents=True)
    (inbox / "bad;rm -rf" / "export.xml").write_bytes(apple_xml(3))
    (inbox / "good").mkdir()
    (inbox / "good" / "export.xml").write_bytes(apple_xml(3))
    settings = Settings(lake=tmp_path / "lake", inbox=inbox)
    report = runner.ingest_candidates(runner.discover_inbox(inbox), settings)
    status = {f.user_id: (f.status, f.code) for f in report.files}
    assert status["bad;rm -rf"] == ("skipped", "unsafe_user_id")
    assert status["good"][0] == "ingested"
    assert not [p for p in settings.lake.rglob("*") if "bad;" in str(p)]


def test_quarantine_copy_of_a_json_input_is_not_mistaken_for_a_reason(tmp_path):
    f = tmp_path / "in" / "broken.json"
    f.parent.mkdir()
    f.write_text('[{"a": 1,')
    settings = Settings(lake=tmp_path / "lake")
    runner.ingest_paths([f], "u1", settings)
    (reason,) = _reasons(settings.lake)
    assert reason.code == "json_parse_error" and "line 1 column" in reason.error
    copies = [p for p in (settings.lake / "quarantine").iterdir() if p.suffix == ".json"]
    assert len(copies) == 2  # the copy and its reason
    assert {p.read_text() == '[{"a": 1,' for p in copies} == {True, False}


def test_the_same_file_for_two_people_is_read_for_both(tmp_path):
    """Both staged the same bytes into one folder before: the second overwrote the first."""
    from tunewell.lake import store

    inbox = tmp_path / "inbox"
    for who in ("ann", "bob"):
        (inbox / who).mkdir(parents=True)
        (inbox / who / "export.xml").write_bytes(apple_xml(12))
        (inbox / who / "broken.json").write_text("[1,")
    settings = Settings(lake=tmp_path / "lake", inbox=inbox)
    report = runner.ingest_candidates(runner.discover_inbox(inbox), settings)
    hr = store.read(settings.lake, "heart_rate")
    assert hr.group_by("user_id").len().sort("user_id").rows() == [("ann", 12), ("bob", 12)]
    rows = {f.user_id: f.rows for f in report.files if f.status == "ingested"}
    assert rows == {"ann": {"heart_rate": 12}, "bob": {"heart_rate": 12}}
    assert sorted(r.user_id for r in _reasons(settings.lake)) == ["ann", "bob"]
