"""The lake contract: schemas, atomic writes, idempotent upserts, lock, permissions, manifest."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunewell.lake import manifest, schemas, store
from tunewell.lake.frames import conform, to_arrow
from tunewell.settings import UserSettings, ZonePeriod, load_settings

USER = UserSettings("u1", tz="Europe/Berlin")


def hr_rows(n: int = 5, start: datetime = datetime(2026, 3, 1, tzinfo=UTC), bpm: float = 60.0):
    df = pl.DataFrame(
        {
            "start_utc": [start + timedelta(minutes=i) for i in range(n)],
            "bpm": [bpm + i for i in range(n)],
            "context": ["sample"] * n,
        }
    )
    return conform(df, "heart_rate", user=USER, source="test", source_file="f" * 64, device="d")


def test_required_names_are_in_the_contract():
    need = {
        "sleep_episode": [
            "sleep_date",
            "is_main_sleep",
            "tib_min",
            "tst_min",
            "sol_min",
            "waso_min",
            "awakenings",
            "efficiency_pct",
        ],
        "sleep_stage": ["stage"],
        "hrv": ["metric", "window", "value_ms"],
        "vendor_score": ["date", "vendor", "name", "value"],
        "self_report": ["date", "item", "value"],
        "nightly_features": ["user_id", "sleep_date", "tst_min", "efficiency_pct", "rmssd_ms"],
        "scores": [
            "user_id",
            "sleep_date",
            "balance_index",
            "balance_state",
            "sleep_quality",
            "contributors",
            "model_version",
        ],
    }
    for t, cols in need.items():
        assert set(cols) <= set(schemas.table(t).names), t
    common = [
        "user_id",
        "source",
        "device",
        "source_file",
        "record_id",
        "start_utc",
        "end_utc",
        "utc_offset_min",
        "tz_name",
        "tz_source",
    ]
    for t in schemas.SILVER.values():
        assert t.names[: len(common)] == common
    assert set(schemas.SILVER) == {
        "heart_rate",
        "rr_interval",
        "hrv",
        "sleep_episode",
        "sleep_stage",
        "steps",
        "workout",
        "vitals",
        "vendor_score",
        "self_report",
        "lab_result",
    }
    assert set(schemas.GOLD) >= {"nightly_features", "daily_load", "scores", "weekly_summary"}


def test_every_column_is_documented_in_parquet_and_dictionary(lake: Path):
    store.upsert(lake, "heart_rate", hr_rows())
    f = next((lake / "silver" / "heart_rate").rglob("*.parquet"))
    schema = pq.read_schema(f)
    for field in schema:
        assert field.metadata and field.metadata[b"meaning"], field.name
    store.init_lake(lake)
    text = (lake / "DICTIONARY.md").read_text()
    for t in schemas.TABLES.values():
        assert f"## {t.layer}.{t.name}" in text
        for c in t.columns:
            assert c.meaning, (t.name, c.name)
            assert f"`{c.name}`" in text


def test_conform_rejects_unknown_columns():
    with pytest.raises(ValueError, match="not in the contract"):
        conform(
            pl.DataFrame({"start_utc": [datetime(2026, 1, 1)], "bmp": [60.0]}),
            "heart_rate",
            user=USER,
            source="x",
            source_file="y",
        )


def test_upsert_is_idempotent_and_replaces_by_record_id(lake: Path):
    rows = hr_rows()
    s1 = store.upsert(lake, "heart_rate", rows)
    files = list((lake / "silver" / "heart_rate").rglob("*.parquet"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    s2 = store.upsert(lake, "heart_rate", rows)
    assert (s1.inserted, s2.inserted, s2.unchanged) == (5, 0, 5)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # untouched on a no-op
    changed = rows.with_columns(pl.col("bpm") + 1)
    s3 = store.upsert(lake, "heart_rate", changed)
    assert s3.updated == 5
    out = store.read(lake, "heart_rate")
    assert out.height == 5
    assert out["bpm"].to_list() == changed["bpm"].to_list()


def test_partitions_are_hive_by_user_and_year(lake: Path):
    rows = pl.concat([hr_rows(2), hr_rows(2, datetime(2025, 12, 31, 23, 0, tzinfo=UTC))])
    store.upsert(lake, "heart_rate", rows)
    parts = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))
    assert parts == [
        "silver/heart_rate/user_id=u1/year=2025/part-0.parquet",
        "silver/heart_rate/user_id=u1/year=2026/part-0.parquet",
    ]
    # Partition columns are not duplicated inside the files (pyarrow/pandas merge pitfall).
    assert "user_id" not in pq.read_schema(lake.rglob("*.parquet").__next__()).names


def test_crash_between_temp_and_rename_keeps_previous_state(lake: Path, monkeypatch):
    store.upsert(lake, "heart_rate", hr_rows())
    before = store.read(lake, "heart_rate")

    def boom(tmp, path):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(store, "_replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        store.upsert(lake, "heart_rate", hr_rows(bpm=90))
    monkeypatch.undo()
    assert store.read(lake, "heart_rate").equals(before)
    assert not list(lake.rglob("*.tmp"))
    # Re-running after the crash converges to the intended state, without duplicates.
    store.upsert(lake, "heart_rate", hr_rows(bpm=90))
    after = store.read(lake, "heart_rate")
    assert after.height == 5
    assert after["bpm"].min() == 90


def test_files_and_folders_are_owner_only(lake: Path):
    store.upsert(lake, "heart_rate", hr_rows())
    manifest.record(lake, manifest.ManifestEntry("a" * 64, "x.fit", "u1", "garmin_fit", "ingested"))
    for p in [lake, *lake.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"


def _hold_lock(lake: str, ready, release) -> None:
    with store.lake_lock(Path(lake)):
        ready.set()
        release.wait(30)


def test_second_writer_gets_a_clear_error(lake: Path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(lake), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with (
            pytest.raises(store.LakeLockedError, match="being written by another"),
            store.lake_lock(lake),
        ):
            pass
    finally:
        release.set()
        proc.join(30)
    with store.lake_lock(lake):  # free again once the first writer is done
        pass


def _die_holding_the_lock(lake: str) -> None:
    with store.lake_lock(Path(lake)):
        os._exit(1)  # a crash: no clean-up runs


def test_a_crashed_writer_does_not_wedge_the_lake(lake: Path):
    proc = multiprocessing.get_context("fork").Process(
        target=_die_holding_the_lock, args=(str(lake),)
    )
    proc.start()
    proc.join(30)
    assert proc.exitcode == 1 and (lake / ".lock").read_text()  # it left its name behind
    with store.lake_lock(lake):
        assert (lake / ".lock").read_text().split()[1] == str(os.getpid())


def test_manifest_and_quarantine_round_trip(lake: Path, tmp_path: Path):
    src = tmp_path / "bad.fit"
    src.write_bytes(b"not a fit file")
    sha = manifest.sha256_file(src)
    reason = manifest.QuarantineReason(str(src), sha, "u1", "garmin_fit", "corrupt header")
    dest = manifest.quarantine(lake, src, reason)
    assert dest.read_bytes() == b"not a fit file"
    data = json.loads(dest.with_name(dest.name + ".json").read_text())
    assert data["error"] == "corrupt header" and data["format_guess"] == "garmin_fit"
    manifest.record(lake, manifest.ManifestEntry(sha, str(src), "u1", "garmin_fit", "quarantined"))
    assert manifest.lookup(lake, sha, "u1").status == "quarantined"
    assert manifest.lookup(lake, sha, "u2") is None
    assert [e.sha256 for e in manifest.entries(lake)] == [sha]


def test_scan_of_absent_table_is_empty_with_schema(lake: Path):
    df = store.read(lake, "sleep_episode")
    assert df.is_empty()
    assert df.columns == schemas.table("sleep_episode").names


def test_settings_from_toml_and_environment(tmp_path: Path, monkeypatch):
    cfg = tmp_path / "tunewell.toml"
    cfg.write_text(
        '[lake]\npath = "mylake"\n[sources]\npriority = ["oura", "garmin_fit"]\n'
        '[users.ann]\ntz = "Europe/Berlin"\nsex = "female"\n'
        'tz_history = [{since = "2026-04-01", tz = "America/New_York"}]\n'
        '[users.ann.options]\nstart_date = 2020-01-06\nfitabase_id = "6962181067"\n'
    )
    monkeypatch.delenv("TUNEWELL_LAKE", raising=False)
    s = load_settings(cfg)
    assert s.lake == tmp_path / "mylake"
    assert s.priority_rank("oura") < s.priority_rank("garmin_fit") < s.priority_rank("fitbit")
    ann = s.user("ann")
    assert ann.zone_periods()[-1] == ZonePeriod(date(2026, 4, 1), "America/New_York")
    assert ann.options == {"start_date": date(2020, 1, 6), "fitabase_id": "6962181067"}
    monkeypatch.setenv("TUNEWELL_LAKE", str(tmp_path / "envlake"))
    assert load_settings(cfg).lake == tmp_path / "envlake"


def test_pseudonymised_user_ids_are_keyed_hashes(tmp_path: Path):
    from tunewell.settings import Settings

    s = Settings(
        lake=tmp_path,
        users={"ann": UserSettings("ann", tz="Europe/Berlin")},
        pseudonymise_key="secret",
    )
    lake_id = s.user("ann").user_id
    assert lake_id != "ann" and lake_id == s.lake_id("ann")
    assert Settings(lake=tmp_path, pseudonymise_key="other").lake_id("ann") != lake_id
    back = s.lake_user(lake_id)
    assert (back.user_id, back.tz) == (lake_id, "Europe/Berlin")
    assert Settings(lake=tmp_path).user("ann").user_id == "ann"


def test_vendor_scores_are_partitioned_by_their_date(lake: Path):
    df = pl.DataFrame(
        {
            "start_utc": [datetime(2025, 12, 31, 23, 30, tzinfo=UTC)],
            "date": [date(2026, 1, 1)],
            "vendor": ["oura"],
            "name": ["readiness"],
            "value": [80.0],
        }
    )
    first = conform(df, "vendor_score", user=USER, source="oura", source_file="a")
    again = conform(
        df.with_columns(pl.lit(datetime(2026, 1, 1, 7, tzinfo=UTC)).alias("start_utc")),
        "vendor_score",
        user=USER,
        source="oura",
        source_file="b",
    )
    store.upsert(lake, "vendor_score", first)
    store.upsert(lake, "vendor_score", again)
    assert store.read(lake, "vendor_score").height == 1
    assert [p.parent.name for p in lake.rglob("*.parquet")] == ["year=2026"]


def test_a_partition_is_written_in_bounded_row_groups_with_every_row(lake: Path, monkeypatch):
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 4)
    rows = hr_rows(10)
    store.upsert(lake, "heart_rate", rows)
    (path,) = (lake / "silver" / "heart_rate").rglob("*.parquet")
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]
    back = store.read(lake, "heart_rate")
    assert back.equals(rows.select(back.columns))
    store.upsert(lake, "heart_rate", rows.head(3).with_columns(pl.col("bpm") + 1))  # a merge
    out = store.read(lake, "heart_rate").sort("start_utc")
    assert out.height == 10 and out["bpm"].head(3).to_list() == [61.0, 62.0, 63.0]


def test_a_partition_within_one_row_group_is_the_one_piece_file(lake: Path):
    rows = hr_rows(10)
    store.upsert(lake, "heart_rate", rows)
    (path,) = (lake / "silver" / "heart_rate").rglob("*.parquet")
    sink = pa.BufferOutputStream()  # the earlier write: pq.write_table of the whole partition
    pq.write_table(to_arrow(rows, "heart_rate").drop(["user_id"]), sink, compression="zstd")
    assert path.read_bytes() == sink.getvalue().to_pybytes()


def _staged(tmp_path: Path, frames: list[pl.DataFrame]) -> list[Path]:
    paths = []
    for i, df in enumerate(frames):
        p = tmp_path / f"staged-{i}.parquet"
        df.write_parquet(p)
        paths.append(p)
    return paths


@pytest.mark.parametrize("order", ["in_order", "shuffled", "duplicated"])
def test_upsert_files_streams_or_merges_to_the_file_upsert_writes(
    lake: Path, tmp_path: Path, monkeypatch, order: str
):
    """A first ingest in time order is streamed piece by piece; rows out of order or repeated
    fall back to the in-memory merge. Either way the file is byte-equal to ``upsert`` of the
    concatenation and every row is seen once."""
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 4)
    rows = hr_rows(11)
    pieces = [rows.slice(0, 3), rows.slice(3, 5), rows.slice(8, 3)]
    if order == "shuffled":
        pieces = [pieces[1], pieces[0], pieces[2]]
    elif order == "duplicated":
        pieces = [*pieces, rows.slice(5, 2).with_columns(pl.col("bpm") + 100)]
    merged: list[int] = []
    real = store._upsert_partition
    monkeypatch.setattr(store, "_upsert_partition", lambda *a: merged.append(1) or real(*a))
    seen: list[int] = []
    stats = store.upsert_files(
        lake, "heart_rate", _staged(tmp_path, pieces), on_rows=lambda df: seen.append(df.height)
    )
    assert bool(merged) == (order != "in_order")  # streamed only when in order and distinct
    ref = tmp_path / "ref"
    ref_stats = store.upsert(ref, "heart_rate", pl.concat(pieces))
    (got,) = (lake / "silver" / "heart_rate").rglob("*.parquet")
    (want,) = (ref / "silver" / "heart_rate").rglob("*.parquet")
    assert got.read_bytes() == want.read_bytes()
    assert pq.ParquetFile(got).metadata.num_row_groups == 3
    assert sum(seen) == sum(p.height for p in pieces) == stats.rows_in
    assert (stats.inserted, stats.duplicates_in_batch, stats.partitions) == (
        ref_stats.inserted,
        ref_stats.duplicates_in_batch,
        ref_stats.partitions,
    )
