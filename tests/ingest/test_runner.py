"""The file lifecycle: stage, validate, commit, manifest, quarantine — with a toy reader."""

from __future__ import annotations

import json
import types
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tunewell.ingest import registry, runner
from tunewell.ingest.base import ReadError
from tunewell.lake import manifest, store


def _toy_reader() -> types.ModuleType:
    """Reads 'TOYHR' files: one 'minute_offset,bpm' line per sample."""
    mod = types.ModuleType("toy")
    mod.SOURCE, mod.PRIORITY = "toy", 0

    def sniff(path, head):
        return head.startswith(b"TOYHR")

    def read(ctx):
        lines = ctx.path.read_text().splitlines()[1:]
        if any(line == "BROKEN" for line in lines):
            raise ReadError("line says BROKEN")
        t0 = datetime(2026, 5, 1, tzinfo=UTC)
        rows = [line.split(",") for line in lines]
        df = pl.DataFrame(
            {
                "start_utc": [t0 + timedelta(minutes=int(m)) for m, _ in rows],
                "bpm": [float(b) for _, b in rows],
                "context": ["sample"] * len(rows),
            }
        )
        yield "heart_rate", ctx.conform(df, "heart_rate", source="toy", device="toy band")

    mod.sniff, mod.read = sniff, read
    return mod


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    monkeypatch.setattr(registry, "readers", lambda: (_toy_reader(),))


def write(p: Path, rows: list[str]) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("TOYHR\n" + "\n".join(rows) + "\n")
    return p


def lake_state(lake: Path) -> tuple[int, list[str]]:
    df = store.read(lake, "heart_rate")
    return df.height, sorted(df["record_id"].to_list())


def test_reingest_changes_nothing_and_bad_files_go_to_quarantine(tmp_path, settings):
    inbox = tmp_path / "in"
    write(inbox / "a.toy", ["0,60", "1,61", "2,62"])
    write(inbox / "b.toy", ["3,63", "BROKEN"])
    (inbox / "notes.txt").write_text("hello")
    rep = runner.ingest_paths([inbox], "u1", settings)
    assert (rep.count("ingested"), rep.count("quarantined"), rep.count("skipped")) == (1, 1, 1)
    state = lake_state(settings.lake)
    assert state[0] == 3
    q = json.loads(next((settings.lake / "quarantine").glob("*b.toy.json")).read_text())
    assert "line says BROKEN" in q["error"] and q["file"].endswith("b.toy")
    rep2 = runner.ingest_paths([inbox], "u1", settings)
    assert rep2.count("already_seen") == 3
    assert lake_state(settings.lake) == state


def test_same_rows_in_two_files_are_not_doubled(tmp_path, settings):
    write(tmp_path / "export1" / "a.toy", ["0,60", "1,61"])
    write(tmp_path / "export2" / "a.toy", ["1,61", "2,62", "#"])  # overlapping export, new bytes
    (tmp_path / "export2" / "a.toy").write_text("TOYHR\n1,61\n2,62\n")
    runner.ingest_paths([tmp_path / "export1", tmp_path / "export2"], "u1", settings)
    assert lake_state(settings.lake)[0] == 3


def test_invalid_rows_are_dropped_counted_and_kept_aside(tmp_path, settings):
    write(tmp_path / "a.toy", ["0,60", "1,300", "2,61", "3,62"])
    rep = runner.ingest_paths([tmp_path / "a.toy"], "u1", settings)
    assert rep.invalid_rows == {"heart_rate": {"bpm in 25..230": 1}}
    assert rep.files[0].dropped_invalid == {"heart_rate": 1}
    assert lake_state(settings.lake)[0] == 3
    bad = pl.read_parquet(next((settings.lake / "quarantine" / "rows").glob("*.parquet")))
    assert bad["failed"].to_list() == ["bpm in 25..230"] and bad["bpm"].to_list() == [300.0]


def test_a_file_mostly_invalid_is_rejected_whole(tmp_path, settings):
    write(tmp_path / "a.toy", ["0,600", "1,700", "2,61"])
    rep = runner.ingest_paths([tmp_path / "a.toy"], "u1", settings)
    assert rep.files[0].status == "quarantined"
    assert "2 of 3 rows failed validation" in rep.files[0].error
    assert lake_state(settings.lake)[0] == 0


def test_crash_before_manifest_replays_without_duplicates(tmp_path, settings, monkeypatch):
    write(tmp_path / "a.toy", ["0,60", "1,61"])
    real = manifest.record

    def crash(lake, entry):
        if entry.status == "ingested":
            raise KeyboardInterrupt("power cut after the upsert, before the manifest")
        real(lake, entry)

    monkeypatch.setattr(manifest, "record", crash)
    with pytest.raises(KeyboardInterrupt):
        runner.ingest_paths([tmp_path], "u1", settings)
    monkeypatch.setattr(manifest, "record", real)
    rep = runner.ingest_paths([tmp_path], "u1", settings)
    assert rep.count("ingested") == 1
    assert lake_state(settings.lake)[0] == 2


def test_zip_members_are_ingested_and_a_broken_zip_is_quarantined(tmp_path, settings):
    a = write(tmp_path / "src" / "a.toy", ["0,60", "1,61"])
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as zf:
        zf.write(a, "nested/a.toy")
        zf.writestr("../evil.toy", "TOYHR\n5,65\n")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04broken")
    rep = runner.ingest_paths([tmp_path / "export.zip"], "u1", settings)
    assert lake_state(settings.lake)[0] == 2
    assert not (tmp_path.parent / "evil.toy").exists()
    assert any(f.file.endswith("export.zip!nested/a.toy") for f in rep.files)
    rep = runner.ingest_paths([tmp_path / "bad.zip"], "u1", settings)
    assert rep.files[0].status == "quarantined" and "broken zip" in rep.files[0].error


def test_retry_reopens_an_archive_with_a_quarantined_member(tmp_path, settings, monkeypatch):
    good = write(tmp_path / "src" / "a.toy", ["0,60", "1,61"])
    bad = write(tmp_path / "src" / "b.toy", ["2,62", "BROKEN"])
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as zf:
        zf.write(good, "a.toy")
        zf.write(bad, "b.toy")
    rep = runner.ingest_paths([tmp_path / "export.zip"], "u1", settings)
    assert sorted(f.status for f in rep.files) == ["ingested", "quarantined"]
    assert runner.ingest_paths([tmp_path / "export.zip"], "u1", settings).files[0].status == (
        "already_seen"
    )
    # The reader learns to read the broken line; a retry goes back into the archive.
    monkeypatch.setattr(registry, "readers", lambda: (_lenient_reader(),))
    rep = runner.ingest_paths([tmp_path / "export.zip"], "u1", settings, retry_quarantined=True)
    by_name = {Path(f.file.split("!")[-1]).name: f.status for f in rep.files}
    assert by_name == {"a.toy": "already_seen", "b.toy": "ingested"}
    assert lake_state(settings.lake)[0] == 3


def _lenient_reader() -> types.ModuleType:
    mod = _toy_reader()
    strict = mod.read

    def read(ctx):
        text = ctx.path.read_text().replace("BROKEN\n", "")
        clean = ctx.path.with_suffix(".clean")
        clean.write_text(text)
        yield from strict(type(ctx)(clean, ctx.display, ctx.sha256, ctx.user, ctx.options))

    mod.read = read
    return mod
