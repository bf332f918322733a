"""The integer local hour/date the feature build uses equal the calendar ones, and the
allocator option the package sets reaches polars."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tunewell.lake.timezones import local_date, local_epoch_us, local_hour, local_time


def test_integer_local_clock_equals_calendar_decoding() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    # 1950..2040, offsets -12..+14 h in minutes (quarter-hour zones included), a few nulls.
    lo = int(datetime(1950, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    hi = int(datetime(2040, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    us = rng.integers(lo, hi, n)
    us[:50] = 0  # the epoch itself and the minutes around it
    us[50:100] = rng.integers(-3 * 3_600_000_000, 3 * 3_600_000_000, 50)
    off = rng.integers(-720, 841, n).astype(np.int32)
    df = pl.DataFrame(
        {"start_utc": pl.Series(us).cast(pl.Datetime("us")), "utc_offset_min": off}
    ).with_columns(pl.col("start_utc").dt.replace_time_zone("UTC"))
    gaps = pl.int_range(pl.len()) % 997 == 5
    df = df.with_columns(
        pl.when(gaps).then(None).otherwise(pl.col("utc_offset_min")).alias("utc_offset_min")
    )
    out = df.select(
        local_hour().alias("h"),
        local_time().dt.hour().alias("h_ref"),
        local_date().alias("d"),
        local_time().dt.date().alias("d_ref"),
        local_epoch_us().alias("us"),
        local_time().dt.epoch("us").alias("us_ref"),
    )
    assert out["h"].null_count() > 0
    for a, b in (("h", "h_ref"), ("d", "d_ref"), ("us", "us_ref")):
        assert out[a].dtype == out[b].dtype
        assert out[a].equals(out[b]), a


def test_package_sets_polars_allocator_arenas_unless_user_did() -> None:
    code = "import tunewell, polars, os; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    got = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    # polars puts its own defaults first and appends what it found: ours is the last word.
    assert got.endswith(",narenas:1"), got
    mine = subprocess.run(
        [sys.executable, "-c", code],
        env=env | {"_RJEM_MALLOC_CONF": "narenas:4"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert mine.endswith(",narenas:4") and "narenas:1" not in mine, mine
