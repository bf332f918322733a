"""Choosing the task runner, and the run report's text (no Prefect run needed)."""

from __future__ import annotations

import pytest

from tunewell.features.refresh import RefreshStats
from tunewell.pipelines.run_report import RunSummary, run_markdown
from tunewell.pipelines.runners import Runner, task_runner


def test_default_runner_keeps_the_flows_own():
    assert task_runner(Runner.default) is None
    with pytest.raises(ValueError, match="--runner dask"):
        task_runner("default", "tcp://10.0.0.5:8786")
    with pytest.raises(ValueError):
        task_runner("spark")
    assert task_runner("sequential")._max_workers == 1


def test_dask_runner_local_cluster_or_address():
    local = task_runner("dask")
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["host"] == "127.0.0.1"
    assert local.cluster_class is not None and local.address is None
    remote = task_runner("dask", "tcp://10.0.0.5:8786")
    assert remote.address == "tcp://10.0.0.5:8786"


def test_run_markdown_names_counts_users_and_quarantine(tmp_path):
    rep = {
        "files_seen": 5,
        "ingested": 3,
        "already_seen": 1,
        "quarantined": 1,
        "skipped": 0,
        "tables": {
            "heart_rate": {"inserted": 120, "updated": 0},
            "steps": {"inserted": 0, "updated": 4},
            "hrv": {"inserted": 0, "updated": 0},
        },
        "quarantine_reasons": [{"file": "a.fit", "format": "fit", "error": "a.fit: bad CRC"}],
    }
    gold = RefreshStats(["ann"], {"ann": ("2026-04-01", "2026-04-08")}, {"nightly_features": 8})
    md = run_markdown(RunSummary.from_run(rep, gold, 12.34, tmp_path / "q.md", runner="dask"))
    assert "# tunewell nightly: with quarantined files" in md
    assert "| 5 | 3 | 1 | 1 | 0 | 1 | 12.3 s |" in md
    assert "| heart_rate | 120 | 0 |" in md and "| steps | 0 | 4 |" in md
    assert "| hrv |" not in md
    assert "| ann | 2026-04-01 | 2026-04-08 |" in md
    assert "- a.fit: bad CRC" in md and "Runner: dask." in md
    assert f"]({(tmp_path / 'q.md').as_uri()})" in md
