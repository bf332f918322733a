"""Training flows: personal calibration forward in time, and the evaluate/train commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tunewell.lake import store
from tunewell.lake.frames import conform
from tunewell.models import score
from tunewell.pipelines.cli import app
from tunewell.settings import Settings, UserSettings


def _lake_with_reports(tmp_path: Path, n: int = 90, seed: int = 1) -> Settings:
    """A lake with one person's nightly rows and next-morning sleep-quality answers.

    This person reports a fixed 4 whatever the night (the default model cannot know that; a
    personal calibration learns it from the past and wins on the future)."""
    rng = np.random.default_rng(seed)
    s = Settings(lake=tmp_path / "lake", users={"ann": UserSettings("ann", tz="UTC")})
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(n)]
    tst = rng.normal(430, 40, n)
    u = s.users["ann"]
    nightly = pl.DataFrame(
        {
            "sleep_date": days,
            "sleep_ok": [True] * n,
            "tst_min": tst,
            "efficiency_pct": rng.normal(90, 3, n),
            "waso_min": rng.normal(20, 5, n),
            "sol_min": rng.normal(12, 4, n),
            "deep_min": rng.normal(70, 10, n),
        }
    )
    store.upsert(s.lake, "nightly_features", conform(nightly, "nightly_features", user=u,
                                                     source="", source_file=""))  # fmt: skip
    reports = pl.DataFrame(
        {
            "start_utc": [datetime(d.year, d.month, d.day, 8, tzinfo=UTC) for d in days],
            "date": days,
            "item": ["sleep_quality"] * n,
            "value": [4.0] * n,
        }
    )
    store.upsert(s.lake, "self_report", conform(reports, "self_report", user=u,
                                                source="pmdata", source_file="x"))  # fmt: skip
    score.rescore(s)
    return s


def test_personal_calibration_used_only_when_it_wins_on_the_future(tmp_path):
    from tunewell.pipelines.train import train_personal

    s = _lake_with_reports(tmp_path)
    default_version = score.default_sleep_model().version
    assert store.read(s.lake, "scores")["model_version"].unique().to_list() == [default_version]
    res = train_personal(s, "ann")
    assert (res.n_past, res.n_future) == (60, 30)
    assert res.used and res.mae_personal < res.mae_default
    assert score.personal_model_path(s.lake, "ann").exists()
    sc = store.read(s.lake, "scores")
    assert sc.height == 90  # replaced, not doubled
    assert sc["model_version"].unique().to_list() == [f"{default_version}+personal-ann"]
    assert (sc["sleep_quality"] - 75).abs().max() < 5  # it learnt the person's steady 4


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_cli_train_user_and_evaluate(tmp_path, prefect_harness):
    s = _lake_with_reports(tmp_path, n=20)
    res = CliRunner().invoke(app, ["train", "--user", "ann", "--lake", str(s.lake)])
    assert res.exit_code == 0, res.output
    assert "not using" in res.output and "needs 30" in res.output
    assert not score.personal_model_path(s.lake, "ann").exists()
    res = CliRunner().invoke(app, ["evaluate", "--lake", str(s.lake)])
    assert res.exit_code == 0, res.output
    assert "needs self-reported sleep_quality from at least two people" in res.output
    assert (s.lake / "reports" / "evaluation.md").exists()
    assert (s.lake / "reports" / "evaluation.json").exists()
