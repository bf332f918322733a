"""Bounded memory changes nothing: the lake built in tiny pieces equals the one built whole.

Commit validates one staged part at a time and upserts one partition at a time from staging
(``store.upsert_files``); the gold refresh builds a long range in chunks of days. Each test
ingests the same files twice, once with every bound at a few rows or days (so every file is
staged in many parts, validated in many Great Expectations runs, and every partition is put
together from several files) and once with the bounds so large that everything is one piece, as
before the bounds existed, and compares the lakes: silver partition files byte for byte, gold to
rtol 1e-9 (polars' threaded float sums differ between runs of the same build by ~1e-12), and the
run reports' counts. The pre-change code's 250 MB heavy-export lake was also compared by hand with
the bounded build: silver byte-equal, gold equal to rtol 1e-9 (bench/README.md).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import bench_module, shared
from tests.ingest.test_apple_health import export_xml, rec, write_zip
from tunewell.features import refresh
from tunewell.ingest import runner, validate
from tunewell.ingest.formats import apple_health
from tunewell.models.score import refresh as refresh_gold
from tunewell.settings import Settings, UserSettings

TINY = {"spill": 3, "chunk": 2, "batch": 2, "days": 3}
HR = f"{apple_health._HK}HeartRate"
WHOLE = {"spill": 10**9, "chunk": 10**9, "batch": 10**9, "days": 10**6}


def _build(files: list[Path], lake: Path, bounds: dict, monkeypatch) -> dict:
    monkeypatch.setattr(runner, "SPILL_ROWS", bounds["spill"])
    monkeypatch.setattr(validate, "CHUNK_ROWS", bounds["chunk"])
    monkeypatch.setattr(apple_health, "BATCH_ROWS", bounds["batch"])
    monkeypatch.setattr(refresh, "CHUNK_DAYS", bounds["days"])
    settings = Settings(lake=lake, users={"u1": UserSettings("u1", tz="Europe/Berlin")})
    report = runner.ingest_paths(files, "u1", settings)
    refresh_gold(settings)
    return {
        "files": sorted((f.file, f.status, f.rows, f.dropped_invalid) for f in report.files),
        "tables": {k: v.__dict__ for k, v in report.tables.items()},
        "invalid": report.invalid_rows,
        "validated": report.validated,
        "changed": report.changed_dates,
    }


def _assert_same_lake(a: Path, b: Path) -> None:
    for layer in ("silver", "gold"):
        fa = sorted(p.relative_to(a) for p in (a / layer).rglob("part-0.parquet"))
        fb = sorted(p.relative_to(b) for p in (b / layer).rglob("part-0.parquet"))
        assert fa == fb and (fa or layer == "gold")
        for f in fa:
            if layer == "silver":
                assert (a / f).read_bytes() == (b / f).read_bytes(), f
            else:
                assert_frame_equal(
                    pl.read_parquet(a / f), pl.read_parquet(b / f), rel_tol=1e-9, abs_tol=1e-9
                )
    # quarantine files are named by a random id: compare what they hold, not their order
    qa = (a / "quarantine" / "rows").glob("*.parquet")
    qb = (b / "quarantine" / "rows").glob("*.parquet")
    assert sorted(pl.read_parquet(q).height for q in qa) == sorted(
        pl.read_parquet(q).height for q in qb
    )


def _compare(files: list[Path], tmp_path: Path, monkeypatch, bounds: dict = TINY) -> dict:
    tiny = _build(files, tmp_path / "tiny", bounds, monkeypatch)
    whole = _build(files, tmp_path / "whole", WHOLE, monkeypatch)
    assert tiny == whole
    _assert_same_lake(tmp_path / "tiny", tmp_path / "whole")
    return tiny


@pytest.mark.realdata
def test_real_apple_and_fit_files_give_the_same_lake_in_tiny_pieces(tmp_path, monkeypatch):
    apple = sorted(
        p
        for p in shared("apple-health").rglob("*")
        if p.suffix in (".xml", ".zip") and "zip_contents" not in p.parts
    )
    fit = sorted(shared("fit").rglob("*.fit"))
    # A few rows per Apple batch, but GX runs of hundreds: thousands of 2-row runs would take
    # minutes and check nothing more. The files span 13 years, mostly empty: 90-day chunks are
    # ~50 builds, and the chunk edges still fall inside the dense months and across the gaps.
    bounds = {"spill": 1500, "chunk": 600, "batch": 2, "days": 90}
    got = _compare([*apple, *fit], tmp_path, monkeypatch, bounds)
    assert got["tables"]["heart_rate"]["rows_in"] > 3 * bounds["spill"]
    assert got["tables"]["heart_rate"]["duplicates_in_batch"] > 0  # the same export twice


def test_invalid_and_duplicate_rows_are_handled_the_same_in_tiny_pieces(tmp_path, monkeypatch):
    """Rows failing an expectation in several parts, a record repeated across parts with a
    changed value (the last one wins), and a file mostly invalid (rejected whole)."""
    day = "2024-03-0{d} 0{h}:{m:02d}:00 +0100"
    good = "".join(
        rec(HR, day.format(d=d, h=h, m=m), value=60 + m if m != 6 else 400)
        for d in (1, 2, 3)
        for h in (1, 2)
        for m in range(0, 30, 3)
    )
    again = rec(HR, day.format(d=1, h=1, m=0), value=99)
    a = write_zip(tmp_path / "a.zip", export_xml(good + again))
    bad = "".join(rec(HR, day.format(d=4, h=1, m=m), value=500) for m in range(9))
    b = tmp_path / "b.xml"
    b.write_bytes(export_xml(bad + rec(HR, day.format(d=4, h=2, m=0), value=70)))
    got = _compare([a, b], tmp_path, monkeypatch)
    assert got["invalid"]["heart_rate"] == {"bpm in 25..230": 6 + 9}
    assert got["tables"]["heart_rate"]["duplicates_in_batch"] == 1
    assert [f[1] for f in got["files"]] == ["ingested", "quarantined"]


@pytest.mark.slow
def test_a_generated_heavy_export_gives_the_same_lake_in_tiny_pieces(tmp_path, monkeypatch):
    """Weeks of a heavy user (bench/heavy_apple.py): many gold chunks, thousands of rows."""
    z = tmp_path / "export.zip"
    bench_module("heavy_apple").write_heavy_export(z, 2)  # ~2,100 heart-rate records over a week
    bounds = {"spill": 500, "chunk": 200, "batch": 100, "days": 4}
    got = _compare([z], tmp_path, monkeypatch, bounds)
    assert got["tables"]["heart_rate"]["rows_in"] > 3 * bounds["spill"]
