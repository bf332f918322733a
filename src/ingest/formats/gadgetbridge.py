"""Gadgetbridge's exported SQLite database: every ``*_ACTIVITY_SAMPLE`` table → steps, heart rate.

Gadgetbridge keeps one sample table per device family (Mi Band, Huami, Pebble …) with the same
core columns, so the reader walks all of them instead of knowing families by name. Samples are
per minute in UTC epoch seconds; HEART_RATE 0, 255 (and negative) mean "no reading" and are
dropped here rather than left to validation, because they are the format's null, not glitches.
Times carry no offset: the user's configured zone decides local time.

The database is opened read-only through a URI so a live or locked export is never modified.
Rows are fetched in batches to bound memory on multi-year databases.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError

SOURCE = "gadgetbridge"
PRIORITY = 10
SAMPLE_S = 60
BATCH = 200_000
MAGIC = b"SQLite format 3\x00"
NEEDED = ("TIMESTAMP", "DEVICE_ID", "STEPS")


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


def _sample_tables(con: sqlite3.Connection) -> list[tuple[str, set[str]]]:
    names = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name LIKE '%\\_ACTIVITY\\_SAMPLE' ESCAPE '\\' ORDER BY name"
        )
    ]
    out = []
    for n in names:
        cols = {r[1].upper() for r in con.execute(f'PRAGMA table_info("{n}")')}
        if all(c in cols for c in NEEDED):
            out.append((n, cols))
    return out


def sniff(path: Path, head: bytes) -> bool:
    if not head.startswith(MAGIC):
        return False
    con = _connect(path)
    try:
        return bool(_sample_tables(con))
    finally:
        con.close()


def _devices(con: sqlite3.Connection) -> dict[int, str]:
    """DEVICE._id → its name (falling back to model/identifier), for the ``device`` column."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "DEVICE" not in tables:
        return {}
    cols = {r[1].upper() for r in con.execute('PRAGMA table_info("DEVICE")')}
    pick = [c for c in ("NAME", "MODEL", "IDENTIFIER") if c in cols]
    if "_ID" not in cols or not pick:
        return {}
    rows = con.execute(f"SELECT _id, {', '.join(pick)} FROM DEVICE").fetchall()
    return {r[0]: next((str(v).strip() for v in r[1:] if v not in (None, "")), "") for r in rows}


def _batches(con: sqlite3.Connection, table: str, cols: set[str]) -> Iterator[pl.DataFrame]:
    hr = "HEART_RATE" if "HEART_RATE" in cols else "NULL"
    cur = con.execute(f'SELECT TIMESTAMP, DEVICE_ID, STEPS, {hr} FROM "{table}" ORDER BY TIMESTAMP')
    schema = {"ts": pl.Int64, "device_id": pl.Int64, "steps": pl.Int64, "hr": pl.Int64}
    while rows := cur.fetchmany(BATCH):
        yield pl.DataFrame(rows, schema=schema, orient="row")


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    try:
        con = _connect(ctx.path)
        tables = _sample_tables(con)
    except sqlite3.DatabaseError as exc:
        raise ReadError(f"unreadable Gadgetbridge database: {exc}") from None
    if not tables:
        raise ReadError("no *_ACTIVITY_SAMPLE table with TIMESTAMP, DEVICE_ID and STEPS")
    try:
        names = _devices(con)
        for table, cols in tables:
            for batch in _batches(con, table, cols):
                yield from _frames(ctx, batch, names)
    except sqlite3.DatabaseError as exc:
        raise ReadError(f"Gadgetbridge database broken while reading: {exc}") from None
    finally:
        con.close()


def _frames(
    ctx: FileContext, batch: pl.DataFrame, names: dict[int, str]
) -> Iterator[tuple[str, pl.DataFrame]]:
    start = pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC").alias("start_utc")
    for dev_id, part in batch.group_by("device_id", maintain_order=True):
        device = names.get(int(dev_id[0])) or f"gadgetbridge_device_{dev_id[0]}"
        steps = part.filter(pl.col("steps") >= 0).select(
            start,
            (start + pl.duration(seconds=SAMPLE_S)).alias("end_utc"),
            pl.col("steps").cast(pl.Float64),
        )
        yield "steps", ctx.conform(steps, "steps", source=SOURCE, device=device)
        hr = part.filter(pl.col("hr").is_between(1, 254)).select(
            start, pl.col("hr").cast(pl.Float64).alias("bpm"), pl.lit("sample").alias("context")
        )
        yield "heart_rate", ctx.conform(hr, "heart_rate", source=SOURCE, device=device)
