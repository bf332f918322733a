"""Privacy: export and forget one person, no key or real name in the lake, owner-only files,
and a run that needs no network."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import privacy, query, store
from tunewell.pipelines import quality
from tunewell.pipelines.cli import app
from tunewell.settings import Settings, UserSettings
from tunewell.synth.hostile import apple_xml

PEOPLE = ("annika", "bertil")


def _night(day: int) -> str:
    spans = [("AsleepCore", "00:00", "01:30"), ("AsleepDeep", "01:30", "03:00")]
    return "".join(
        '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
        f'startDate="2026-05-{day:02d} {a}:00 +0000" endDate="2026-05-{day:02d} {b}:00 +0000" '
        f'value="HKCategoryValueSleepAnalysis{s}"/>\n'
        for s, a, b in spans
    )


def _bad_rows() -> str:
    return "".join(
        '<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
        f'startDate="2026-05-03 12:0{i}:00 +0000" endDate="2026-05-03 12:0{i}:00 +0000" '
        'value="999"/>\n'
        for i in range(3)
    )


def _lake(root: Path, key: str | None = None) -> Settings:
    inbox = root / "inbox"
    for who in PEOPLE:
        d = inbox / who
        d.mkdir(parents=True)
        (d / "export.xml").write_bytes(apple_xml(30, extra=_night(1) + _night(2) + _bad_rows()))
        (d / "broken.json").write_text('[{"a": 1,')
    settings = Settings(
        lake=root / "lake",
        inbox=inbox,
        users={w: UserSettings(w, tz="UTC") for w in PEOPLE},
        pseudonymise_key=key,
    )
    report = runner.ingest_candidates(runner.discover_inbox(inbox), settings)
    refresh_gold(settings)
    quality.write_report(quality.build_report(report, settings), settings.lake)
    query.run_query(settings.lake, "select count(*) from heart_rate")
    for who in PEOPLE:  # a coach page per contract 4 (the coach writes these)
        page = settings.lake / "reports" / "weekly" / "2026-W18" / f"{settings.lake_id(who)}.md"
        store.atomic_write_bytes(page, f"# week of {settings.lake_id(who)}\n".encode())
    return settings


def _files(lake: Path) -> list[Path]:
    return [p for p in lake.rglob("*") if p.is_file()]


@pytest.fixture
def lake(tmp_path):
    return _lake(tmp_path)


def test_export_holds_everything_about_the_person(lake, tmp_path):
    out = tmp_path / "annika.zip"
    res = CliRunner().invoke(
        app, ["export", "--user", "annika", "--lake", str(lake.lake), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        hr = pl.read_parquet(zf.read("silver/heart_rate.parquet"))
        readme = zf.read("README.md").decode()
        bad = pl.read_parquet(zf.read("quarantine/rows/000.parquet"))
    assert {
        "silver/sleep_episode.parquet",
        "gold/nightly_features.parquet",
        "manifest.json",
    } <= names
    assert "reports/weekly/2026-W18/annika.md" in names
    assert any(n.startswith("quarantine/files/") and n.endswith("broken.json") for n in names)
    assert set(hr["user_id"]) == {"annika"} and hr.height == 30
    assert set(bad["user_id"]) == {"annika"} and bad.height == 3
    assert "| silver.heart_rate | 30 |" in readme
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_forget_removes_every_trace_and_leaves_the_others(lake):
    other_before = privacy.inventory(lake.lake, "bertil")
    res = CliRunner().invoke(app, ["forget", "--user", "annika", "--yes", "--lake", str(lake.lake)])
    assert res.exit_code == 0, res.output
    assert "silver.heart_rate" in res.output and "30" in res.output  # before and after printed
    assert privacy.inventory(lake.lake, "annika").total == 0
    for p in _files(lake.lake):
        assert b"annika" not in p.read_bytes(), f"{p} still mentions the person"
        assert "annika" not in str(p.relative_to(lake.lake))
    after = privacy.inventory(lake.lake, "bertil")
    assert after.rows == other_before.rows and after.quarantined_rows == 3
    assert after.quarantined_files == other_before.quarantined_files
    # and the lake still works for the others
    assert store.read(lake.lake, "heart_rate")["user_id"].unique().to_list() == ["bertil"]


def test_no_key_and_no_real_name_in_a_pseudonymised_lake(tmp_path):
    key = "k3y-that-must-not-leak-7f3a"
    settings = _lake(tmp_path, key=key)
    ids = {settings.lake_id(w) for w in PEOPLE}
    assert store.users_in(settings.lake) == sorted(ids)
    for p in _files(settings.lake):
        data = p.read_bytes()
        assert key.encode() not in data, f"the key is in {p}"
        for who in PEOPLE:
            assert who.encode() not in data, f"{who!r} is in {p}"
            assert who not in str(p)


def test_lake_files_are_owner_only(lake):
    for p in [lake.lake, *lake.lake.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
    assert (lake.lake / ".duckdb_tmp").is_dir()


@pytest.mark.slow
def test_the_demo_path_runs_without_network(tmp_path):
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode
    ):
        pytest.skip("unshare -n needs root")
    from tests.reliability import harness

    cfg = harness.make_demo(tmp_path, users=1, days=7)
    lake = tmp_path / "lake"
    res = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            str(harness.PLAIN),
            "--config",
            str(cfg),
            "--lake",
            str(lake),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert store.read(lake, "nightly_features").height > 0
