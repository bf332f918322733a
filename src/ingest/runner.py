"""Ingest files into the silver tables: detect, read, validate, upsert, record, or quarantine.

The runner owns the file lifecycle (DESIGN.md): a file's rows reach the lake only when the whole
file was read, and the manifest entry is written only after they are in, so a crash anywhere means
the file is simply read again next time; the idempotent upsert makes that harmless. A file that
cannot be read is copied to quarantine with its reason and the run goes on.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from tunewell.ingest import validate
from tunewell.ingest.base import FileContext
from tunewell.ingest.registry import detect, guess_format, read_head
from tunewell.lake import manifest
from tunewell.lake.settings import Settings, UserSettings
from tunewell.lake.store import UpsertStats, init_lake, secure_mkdir, upsert

SPILL_ROWS = 1_000_000
SKIP_NAMES = {".DS_Store", "Thumbs.db"}
_WRITE_MUTEX = threading.Lock()  # tasks of one flow may run in threads; one upsert at a time


@dataclass
class FileResult:
    file: str
    sha256: str
    user_id: str
    format: str
    status: str  # ingested | already_seen | quarantined | skipped
    rows: dict[str, int] = field(default_factory=dict)
    dropped_invalid: dict[str, int] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


@dataclass
class RunReport:
    files: list[FileResult] = field(default_factory=list)
    tables: dict[str, UpsertStats] = field(default_factory=dict)

    def add(self, res: FileResult, stats: Iterable[UpsertStats] = ()) -> None:
        self.files.append(res)
        for s in stats:
            self.tables.setdefault(s.table, UpsertStats(s.table)).add(s)

    def merge(self, other: RunReport) -> None:
        for f in other.files:
            self.add(f)
        for s in other.tables.values():
            self.tables.setdefault(s.table, UpsertStats(s.table)).add(s)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def affected_users(self) -> list[str]:
        return sorted({f.user_id for f in self.files if f.status == "ingested"})

    def to_dict(self) -> dict:
        return {
            "files_seen": len(self.files),
            "ingested": self.count("ingested"),
            "already_seen": self.count("already_seen"),
            "quarantined": self.count("quarantined"),
            "skipped": self.count("skipped"),
            "files": [asdict(f) for f in self.files],
            "tables": {k: asdict(v) for k, v in sorted(self.tables.items())},
        }


@dataclass(frozen=True)
class Candidate:
    path: Path
    display: str


def discover(paths: Iterable[Path]) -> Iterator[Candidate]:
    """Files under the given paths (folders walked recursively, hidden files skipped)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    if f.name not in SKIP_NAMES:
                        yield Candidate(f, str(f))
        elif p.is_file():
            yield Candidate(p, str(p))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")


def ingest_paths(
    paths: Iterable[Path],
    user_id: str,
    settings: Settings,
    *,
    options: dict | None = None,
    retry_quarantined: bool = False,
    progress: object | None = None,
) -> RunReport:
    report = RunReport()
    init_lake(settings.lake)
    user = settings.user(user_id)
    for cand in discover(paths):
        report.merge(ingest_file(cand.path, user, settings, display=cand.display,
                                 options=options or {}, retry_quarantined=retry_quarantined))
        if progress is not None and callable(progress):
            progress(cand)
    return report


def ingest_file(
    path: Path,
    user: UserSettings,
    settings: Settings,
    *,
    display: str | None = None,
    options: dict | None = None,
    retry_quarantined: bool = False,
) -> RunReport:
    """Ingest one file (or archive); returns its report. Never raises for a bad file."""
    report = RunReport()
    lake = Path(settings.lake)
    display = display or str(path)
    t0 = time.perf_counter()
    sha = manifest.sha256_file(path)
    seen = manifest.lookup(lake, sha)
    if seen and (seen.status != "quarantined" or not retry_quarantined):
        report.add(FileResult(display, sha, user.user_id, seen.format, "already_seen"))
        return report
    head = read_head(path)
    reader = detect(path, head)
    if reader is None and zipfile.is_zipfile(path):
        return _ingest_zip(path, user, settings, display, sha, options or {}, retry_quarantined)
    if reader is None:
        fmt = guess_format(path, head)
        res = FileResult(display, sha, user.user_id, fmt, "skipped",
                         error="no reader recognises this file's content")
        manifest.record(lake, manifest.ManifestEntry(sha, display, user.user_id, fmt, "skipped",
                                                     note=res.error))
        report.add(res)
        return report
    fmt = reader.SOURCE
    ctx = FileContext(Path(path), display, sha, user, options or {})
    try:
        staged = _read_all(reader, ctx, lake)
        checked: dict[str, pl.DataFrame] = {}
        dropped: dict[str, int] = {}
        for tbl, df in staged.items():
            good, bad = validate.check(tbl, df)
            checked[tbl] = good
            if bad.height:
                dropped[tbl] = bad.height
    except Exception as exc:  # any failure of a reader is a property of the file
        err = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(display) else str(exc)
        reason = manifest.QuarantineReason(display, sha, user.user_id, fmt, err)
        manifest.quarantine(lake, path, reason)
        manifest.record(lake, manifest.ManifestEntry(sha, display, user.user_id, fmt,
                                                     "quarantined", note=err))
        report.add(FileResult(display, sha, user.user_id, fmt, "quarantined", error=err,
                              seconds=time.perf_counter() - t0))
        return report
    finally:
        shutil.rmtree(_staging(lake, sha), ignore_errors=True)
    stats = []
    with _WRITE_MUTEX:
        for tbl, df in checked.items():
            stats.append(upsert(lake, tbl, df))
    rows = {t: df.height for t, df in checked.items()}
    manifest.record(lake, manifest.ManifestEntry(sha, display, user.user_id, fmt, "ingested",
                                                 rows=rows))
    report.add(FileResult(display, sha, user.user_id, fmt, "ingested", rows=rows,
                          dropped_invalid=dropped, seconds=time.perf_counter() - t0), stats)
    return report


def _staging(lake: Path, sha: str) -> Path:
    return Path(lake) / "staging" / sha[:16]


def _read_all(reader, ctx: FileContext, lake: Path) -> dict[str, pl.DataFrame]:
    """Collect a reader's batches, spilling to owner-only staging files past ``SPILL_ROWS``."""
    mem: dict[str, list[pl.DataFrame]] = {}
    spilled: dict[str, list[Path]] = {}
    n_mem = 0
    stage = _staging(lake, ctx.sha256)
    for tbl, df in reader.read(ctx):
        if df.is_empty():
            continue
        mem.setdefault(tbl, []).append(df)
        n_mem += df.height
        if n_mem >= SPILL_ROWS:
            secure_mkdir(stage)
            for t, frames in mem.items():
                p = stage / f"{t}-{len(spilled.get(t, []))}.parquet"
                pl.concat(frames, how="vertical_relaxed").write_parquet(p)
                spilled.setdefault(t, []).append(p)
            mem, n_mem = {}, 0
    out: dict[str, pl.DataFrame] = {}
    for t in set(mem) | set(spilled):
        parts = [pl.read_parquet(p) for p in spilled.get(t, [])] + mem.get(t, [])
        out[t] = pl.concat(parts, how="vertical_relaxed")
    return out


def _ingest_zip(path: Path, user: UserSettings, settings: Settings, display: str, sha: str,
                options: dict, retry_quarantined: bool) -> RunReport:
    """An archive no reader claims whole: ingest its members one by one."""
    report = RunReport()
    lake = Path(settings.lake)
    with tempfile.TemporaryDirectory(prefix="tunewell-zip-") as tmp:
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                for m in members:
                    name = Path(m.filename)
                    if any(part.startswith(".") or part == "__MACOSX" for part in name.parts):
                        continue
                    target = Path(tmp) / name
                    if not target.resolve().is_relative_to(Path(tmp).resolve()):
                        continue  # never write outside the temp folder (zip-slip)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(m) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    report.merge(ingest_file(target, user, settings,
                                             display=f"{display}!{m.filename}", options=options,
                                             retry_quarantined=retry_quarantined))
                    target.unlink()
        except zipfile.BadZipFile as exc:
            err = f"broken zip archive: {exc}"
            manifest.quarantine(lake, path, manifest.QuarantineReason(display, sha, user.user_id,
                                                                      "zip", err))
            report.add(FileResult(display, sha, user.user_id, "zip", "quarantined", error=err))
            return report
    manifest.record(lake, manifest.ManifestEntry(sha, display, user.user_id, "zip", "ingested",
                                                 note=f"{len(report.files)} members"))
    return report
