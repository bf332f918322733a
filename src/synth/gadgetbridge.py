"""Write a simulated person's minutes as a Gadgetbridge database export (SQLite).

The schema follows Gadgetbridge's greenDAO tables: ``DEVICE``, ``USER`` and one sample table per
device family. The person switches bands halfway (Mi Band 3 → Amazfit Bip, whose samples live in
``HUAMI_EXTENDED_ACTIVITY_SAMPLE``), so a reader must walk every sample table and name devices
from ``DEVICE``. About 6 % of minutes carry HEART_RATE 255 or 0 ("no reading") as real bands do.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import polars as pl

from tunewell.synth.people import Population

_SCHEMA = (
    "CREATE TABLE android_metadata (locale TEXT)",
    'CREATE TABLE "DEVICE" ("_id" INTEGER PRIMARY KEY AUTOINCREMENT, "NAME" TEXT NOT NULL, '
    '"MANUFACTURER" TEXT NOT NULL, "IDENTIFIER" TEXT NOT NULL UNIQUE, "TYPE" INTEGER NOT NULL, '
    '"MODEL" TEXT, "ALIAS" TEXT)',
    'CREATE TABLE "USER" ("_id" INTEGER PRIMARY KEY AUTOINCREMENT, "NAME" TEXT NOT NULL, '
    '"BIRTHDAY" INTEGER NOT NULL, "GENDER" INTEGER NOT NULL)',
    'CREATE TABLE "MI_BAND_ACTIVITY_SAMPLE" ("TIMESTAMP" INTEGER NOT NULL, "DEVICE_ID" INTEGER '
    'NOT NULL, "USER_ID" INTEGER NOT NULL, "RAW_INTENSITY" INTEGER NOT NULL, "STEPS" INTEGER NOT '
    'NULL, "RAW_KIND" INTEGER NOT NULL, "HEART_RATE" INTEGER NOT NULL, PRIMARY KEY ("TIMESTAMP",'
    '"DEVICE_ID")) WITHOUT ROWID',
    'CREATE TABLE "HUAMI_EXTENDED_ACTIVITY_SAMPLE" ("TIMESTAMP" INTEGER NOT NULL, "DEVICE_ID" '
    'INTEGER NOT NULL, "USER_ID" INTEGER NOT NULL, "RAW_INTENSITY" INTEGER NOT NULL, "STEPS" '
    'INTEGER NOT NULL, "RAW_KIND" INTEGER NOT NULL, "HEART_RATE" INTEGER NOT NULL, "UNKNOWN1" '
    'INTEGER, "SLEEP" INTEGER, "DEEP_SLEEP" INTEGER, "REM_SLEEP" INTEGER, PRIMARY KEY '
    '("TIMESTAMP","DEVICE_ID")) WITHOUT ROWID',
)
DEVICES = (
    (1, "Mi Band 3", "Xiaomi", "E1:7A:22:00:00:01", 11, "3.0.0"),
    (2, "Amazfit Bip", "Huami", "C8:0F:10:00:00:02", 12, "1.1.6"),
)


def write_gadgetbridge(
    pop: Population, user_id: str, out_dir: Path, *, seed: int = 0
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "Gadgetbridge"
    path.unlink(missing_ok=True)
    mins = pop.minutes.filter(pl.col("user_id") == user_id).sort("start_utc")
    ts = mins["start_utc"].dt.epoch("s").to_numpy()
    steps = mins["steps"].to_numpy().astype(np.int64)
    rng = np.random.default_rng([seed, int(hashlib.sha1(user_id.encode()).hexdigest()[:8], 16)])
    hr = np.round(mins["hr"].to_numpy()).astype(np.int64)
    u = rng.random(len(hr))
    hr = np.where(u < 0.04, 255, np.where(u < 0.06, 0, hr))
    intensity = np.clip(steps, 0, 255)
    kind = np.where(steps > 0, 1, 80)
    half = len(ts) // 2
    con = sqlite3.connect(path)
    try:
        for stmt in _SCHEMA:
            con.execute(stmt)
        con.execute("INSERT INTO android_metadata VALUES ('en_US')")
        con.executemany("INSERT INTO DEVICE VALUES (?, ?, ?, ?, ?, ?, NULL)", DEVICES)
        con.execute("INSERT INTO USER VALUES (1, ?, 0, 0)", (user_id,))
        cols = (ts, steps, hr, intensity, kind)
        rows = list(zip(*(c.tolist() for c in cols), strict=True))
        con.executemany(
            "INSERT INTO MI_BAND_ACTIVITY_SAMPLE VALUES (?, 1, 1, ?, ?, ?, ?)",
            [(t, i, s, k, h) for t, s, h, i, k in rows[:half]],
        )
        con.executemany(
            "INSERT INTO HUAMI_EXTENDED_ACTIVITY_SAMPLE VALUES (?, 2, 1, ?, ?, ?, ?, 0, 0, 0, 0)",
            [(t, i, s, k, h) for t, s, h, i, k in rows[half:]],
        )
        con.commit()
    finally:
        con.close()
    return [path]
