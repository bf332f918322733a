"""The scaling benchmark's equality checks at their quick size: an incremental night through
``refresh_gold`` equals a full recompute at two history lengths, and a backfill in worker
processes equals the sequential one (times are never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import bench_module


@pytest.mark.slow
def test_quick_incremental_equals_full_and_workers_equal_sequential(tmp_path: Path) -> None:
    bench = bench_module("scaling_bench")
    bench.quick(tmp_path)  # raises SystemExit naming the table and column on any difference
    for days in (40, 75):
        gold = bench.gold_frames(tmp_path / f"history_{days}" / "lake")
        assert gold["nightly_features"].height > days  # two people's nights were built
