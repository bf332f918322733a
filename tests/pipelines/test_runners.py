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
    from tunewell.ingest.runner import FileResult, RunReport
    from tunewell.lake.manifest import FileStatus
    from tunewell.lake.store import UpsertStats
    from tunewell.pipelines.quality import QualityReport, QuarantineLine

    files = [
        FileResult(f"f{i}.fit", f"{i}" * 64, "ann", "fit", status)
        for i, status in enumerate(
            [FileStatus.INGESTED] * 3 + [FileStatus.ALREADY_SEEN, FileStatus.QUARANTINED]
        )
    ]
    run = RunReport(
        files=files,
        tables={
            "heart_rate": UpsertStats("heart_rate", inserted=120),
            "steps": UpsertStats("steps", updated=4),
            "hrv": UpsertStats("hrv"),
        },
    )
    rep = QualityReport(run, "2026-04-08T03:00:00+0000", str(tmp_path))
    rep.quarantine_reasons = [QuarantineLine("f4.fit", "fit", "f4.fit: bad CRC")]
    rep.gold_refresh = RefreshStats(
        ["ann"], {"ann": ("2026-04-01", "2026-04-08")}, {"nightly_features": 8}
    )
    rep.report_path = tmp_path / "q.md"
    md = run_markdown(RunSummary.from_report(rep, 12.34, runner="dask"))
    assert "# tunewell nightly: with quarantined files" in md
    assert "| 5 | 3 | 1 | 1 | 0 | 1 | 12.3 s |" in md
    assert "| heart_rate | 120 | 0 |" in md and "| steps | 0 | 4 |" in md
    assert "| hrv |" not in md
    assert "| ann | 2026-04-01 | 2026-04-08 |" in md
    assert "- f4.fit: bad CRC" in md and "Runner: dask." in md
    assert f"]({(tmp_path / 'q.md').as_uri()})" in md
