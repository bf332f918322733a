"""The command line as a user runs it: ingest (exit 0 with quarantined files), query formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import shared
from tunewell.pipelines.cli import app

runner = CliRunner()


@pytest.fixture
def fit_folder(tmp_path: Path) -> Path:
    src = shared("fit", "python-fitparse")
    dst = tmp_path / "exports"
    dst.mkdir()
    for name in ("activity-small-fenix2-run.fit", "activity-unexpected-eof.fit", "Settings.fit"):
        shutil.copy(src / name, dst / name)
    return dst


@pytest.mark.realdata
def test_ingest_reports_quarantine_and_exits_zero(fit_folder: Path, tmp_path: Path):
    lake = tmp_path / "lake"
    res = runner.invoke(
        app,
        [
            "ingest",
            str(fit_folder),
            "--user",
            "ann",
            "--lake",
            str(lake),
            "--tz",
            "America/Los_Angeles",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert (rep["files_seen"], rep["ingested"], rep["quarantined"]) == (3, 2, 1)
    (q,) = rep["quarantine_reasons"]
    assert q["file"].endswith("activity-unexpected-eof.fit") and q["error"]
    assert rep["tables"]["heart_rate"]["inserted"] == 2808
    assert (lake / "quarantine").glob("*activity-unexpected-eof.fit.json")

    again = runner.invoke(
        app, ["ingest", str(fit_folder), "--user", "ann", "--lake", str(lake), "--json"]
    )
    assert again.exit_code == 0
    rep2 = json.loads(again.output)
    assert rep2["ingested"] == 0 and rep2["already_seen"] == 3

    out = runner.invoke(
        app,
        [
            "query",
            "--lake",
            str(lake),
            "--format",
            "csv",
            "select count(*) as n, min(bpm) as lo from heart_rate",
        ],
    )
    assert out.exit_code == 0, out.output
    header, row = out.output.strip().splitlines()
    assert header == "n,lo" and int(row.split(",")[0]) == rep["tables"]["heart_rate"]["inserted"]
    js = runner.invoke(
        app,
        [
            "query",
            "--lake",
            str(lake),
            "--format",
            "json",
            "select source, count(*) n from workout group by source",
        ],
    )
    assert json.loads(js.output) == [{"source": "garmin_fit", "n": 1}]


def test_query_on_an_empty_lake_has_every_table(tmp_path: Path):
    from tunewell.lake.store import init_lake

    init_lake(tmp_path / "lake")
    res = runner.invoke(
        app,
        [
            "query",
            "--lake",
            str(tmp_path / "lake"),
            "--format",
            "json",
            "select count(*) n from nightly_features",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"n": 0}]


def test_ingest_of_a_missing_path_fails_clearly(tmp_path: Path):
    res = runner.invoke(
        app, ["ingest", str(tmp_path / "nope"), "--user", "ann", "--lake", str(tmp_path / "lake")]
    )
    assert res.exit_code != 0
    assert "no such file or folder" in str(res.exception) + res.output


def test_a_second_writer_is_told_who_holds_the_lake(tmp_path: Path):
    from tunewell.lake.store import lake_lock

    f = tmp_path / "in" / "x.csv"
    f.parent.mkdir()
    f.write_text("ibi_s,day,time\n")
    lake = tmp_path / "lake"
    with lake_lock(lake):
        res = runner.invoke(app, ["ingest", str(f.parent), "--user", "ann", "--lake", str(lake)])
    assert res.exit_code == 3
    assert "being written by another tunewell process" in res.output


def test_a_bad_query_says_why_without_a_traceback(tmp_path: Path):
    from tunewell.lake.store import init_lake

    init_lake(tmp_path / "lake")
    res = runner.invoke(app, ["query", "--lake", str(tmp_path / "lake"), "select nope from steps"])
    assert res.exit_code == 2
    assert "query failed" in res.output and "nope" in res.output


def test_query_of_a_folder_that_is_no_lake_says_so(tmp_path: Path):
    res = runner.invoke(app, ["query", "--lake", str(tmp_path / "nope"), "select 1"])
    assert res.exit_code == 1 and "no tunewell lake" in res.output


@pytest.mark.realdata
def test_options_from_the_command_line_and_a_quarantine_retry(tmp_path: Path):
    rr = shared("mmash", "user_1", "RR.csv")
    lake = tmp_path / "lake"

    def ingest(*extra: str) -> dict:
        args = ["ingest", str(rr), "--user", "m", "--lake", str(lake), "--json", "--no-features"]
        return json.loads(runner.invoke(app, [*args, *extra]).output)

    rep = ingest()
    assert rep["quarantined"] == 1 and "--start-date" in rep["quarantine_reasons"][0]["error"]
    assert list((lake / "quarantine").glob("*RR.csv*"))
    rep = ingest("--start-date", "2020-01-06", "--retry-quarantined")
    assert rep["ingested"] == 1 and rep["tables"]["rr_interval"]["inserted"] > 90_000
    assert not list((lake / "quarantine").glob("*RR.csv*"))  # released after the retry
