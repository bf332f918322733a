"""The Apple benchmark's equality check at its quick size: the rows tunewell writes equal the
records in the heavy-export generator's file (times are never asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_quick_heavy_export_rows_equal_records(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from apple_bench import check_equal
        from heavy_apple import write_heavy_export
    finally:
        sys.path.remove(str(BENCH))
    z = tmp_path / "export.zip"
    counts = write_heavy_export(z, 2)
    rows = check_equal(z)
    assert rows["heart_rate"] == counts["HKQuantityTypeIdentifierHeartRate"] > 0
    assert rows["steps"] == counts["HKQuantityTypeIdentifierStepCount"] > 0
    assert rows["sleep_stage"] > 0 and rows["workout"] > 0
