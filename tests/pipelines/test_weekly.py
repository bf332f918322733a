"""The weekly flow and ``tunewell weekly`` on a constructed lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.coach.gold import WEEK, steady_load, steady_nights, steady_scores
from tunewell.lake import store
from tunewell.pipelines.cli import app

runner = CliRunner()


def _lake(tmp_path: Path) -> Path:
    lake = store.init_lake(tmp_path / "lake")
    for u in ("a1", "b2"):
        store.upsert(lake, "nightly_features", steady_nights(u))
        store.upsert(lake, "daily_load", steady_load(u))
    store.upsert(lake, "scores", steady_scores("a1"))
    return lake


def test_weekly_refuses_a_bad_week_and_a_missing_lake(tmp_path: Path):
    r = runner.invoke(app, ["weekly", "--lake", str(tmp_path), "--week", "2026-15"])
    assert r.exit_code == 2 and "YYYY-Www" in r.output
    r = runner.invoke(app, ["weekly", "--lake", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "no tunewell lake" in r.output


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_weekly_flow_from_the_command_line(tmp_path: Path, prefect_harness):
    lake = _lake(tmp_path)
    r = runner.invoke(app, ["weekly", "--lake", str(lake), "--week", str(WEEK)])
    assert r.exit_code == 0, r.output
    folder = lake / "reports" / "weekly" / "2026-W15"
    assert "roster page:" in r.output and str(folder / "index.html") in r.output.replace("\n", "")
    assert {p.name for p in folder.iterdir()} == {
        "index.html",
        "index.md",
        "a1.html",
        "a1.md",
        "b2.html",
        "b2.md",
    }
    assert store.read(lake, "weekly_summary").height == 2
