"""The Apple benchmark's equality check at its quick size: the rows tunewell writes equal the
records in the heavy-export generator's file (times are never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import bench_module


@pytest.mark.slow
def test_quick_heavy_export_rows_equal_records(tmp_path: Path) -> None:
    z = tmp_path / "export.zip"
    counts = bench_module("heavy_apple").write_heavy_export(z, 2)
    rows = bench_module("apple_bench").check_equal(z)
    assert rows["heart_rate"] == counts["HKQuantityTypeIdentifierHeartRate"] > 0
    assert rows["steps"] == counts["HKQuantityTypeIdentifierStepCount"] > 0
    assert rows["sleep_stage"] > 0 and rows["workout"] > 0
