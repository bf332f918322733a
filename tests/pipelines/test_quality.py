"""The data-quality report is typed in code and keeps its JSON and Markdown shape on disk."""

from __future__ import annotations

import json

import pytest

from tests.ingest.test_runner import _toy_reader, write
from tunewell.ingest import registry, runner
from tunewell.lake import manifest
from tunewell.lake.manifest import FileStatus, QuarantineStage
from tunewell.pipelines import quality


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    monkeypatch.setattr(registry, "readers", lambda: (_toy_reader(),))


def test_report_counts_files_by_status_and_writes_json_and_markdown(tmp_path, settings):
    inbox = tmp_path / "in"
    write(inbox / "a.toy", ["0,60", "1,61", "2,62"])
    write(inbox / "b.toy", ["3,63", "BROKEN"])
    (inbox / "notes.txt").write_text("hello")
    rep = quality.build_report(runner.ingest_paths([inbox], "u1", settings), settings)
    assert [rep.count(s) for s in FileStatus] == [0, 0, 1, 0, 0, 1, 1]
    (q,) = rep.quarantine_reasons
    assert q.file.endswith("b.toy") and "line says BROKEN" in q.error
    assert [(c.user_id, c.table, c.days, c.rows) for c in rep.coverage] == [
        ("u1", "heart_rate", 1, 3)
    ]
    path = quality.write_report(rep, settings.lake)
    md = path.read_text()
    assert "| 3 | 1 | 0 | 1 | 1 |" in md and "| heart_rate | 3 | 3 | 0 | 0 | 0 | 0 |" in md
    (js,) = (settings.lake / "reports").glob("quality-*.json")
    d = json.loads(js.read_text())
    assert (d["files_seen"], d["ingested"], d["quarantined"], d["skipped"]) == (3, 1, 1, 1)
    assert {f["status"] for f in d["files"]} == {"ingested", "quarantined", "skipped"}
    assert d["quarantine_reasons"][0]["format"] == "toy"


def test_manifest_statuses_read_back_as_enums(tmp_path, settings):
    write(tmp_path / "in" / "b.toy", ["BROKEN"])
    runner.ingest_paths([tmp_path / "in"], "u1", settings)
    (entry,) = manifest.entries(settings.lake)
    assert entry.status is FileStatus.QUARANTINED
    reason = manifest.QuarantineReason(
        **{
            k: v
            for k, v in json.loads(
                next((settings.lake / "quarantine").glob("*.json")).read_text()
            ).items()
        }
    )
    assert reason.stage is QuarantineStage.READ
