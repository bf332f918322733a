"""Ingest files into the silver tables: stage each file, validate per table, commit, record.

The file lifecycle (DESIGN.md) in three steps:

1. ``stage_file``: detect the format by content and read the file into owner-only staging Parquet
   (``<lake>/staging/<sha>/``). A file that cannot be read is copied to quarantine with its
   reason, and the run goes on. Staging bounds memory for huge exports and lets a Prefect flow run
   one task per file, or ``ingest_candidates(workers=N)`` stage files in N processes.
   ``stage_files`` stages a group of files at once: a batch reader's (FIT) files are decoded one
   by one, then conformed and written together (``<lake>/staging/batch<id>-<user>/``).
2. ``commit``: per table, one Great Expectations validation over all staged rows of the run; failed
   rows go to ``quarantine/rows/`` with the failed expectation; a file most of whose rows fail is
   quarantined whole; the rest is upserted by ``record_id`` (one partition rewrite per table and
   run, instead of per file).
3. Only then the manifest records each file as ingested. A crash anywhere before that means the
   files are staged again next run, and the idempotent upsert makes the replay harmless.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar, cast

import polars as pl

from tunewell.ingest import safety, validate
from tunewell.ingest.base import BatchReader, FileContext, Reader, ReadError
from tunewell.ingest.registry import SnifferError, detect, guess_format, read_head
from tunewell.lake import manifest
from tunewell.lake.crash import crashpoint
from tunewell.lake.manifest import FileStatus, QuarantineStage
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.lake.schemas import CONTEXT_ONLY
from tunewell.lake.store import (
    LakeWriteError,
    UpsertStats,
    atomic_write_bytes,
    init_lake,
    is_disk_error,
    lake_lock,
    run_lock,
    secure_mkdir,
    upsert_files,
)
from tunewell.lake.timezones import local_date
from tunewell.settings import Settings, UserSettings

R = TypeVar("R")
# Staged rows held before a spill to staging Parquet; also the most rows commit reads at once.
SPILL_ROWS = 200_000
# A file is rejected whole when more than this share of its rows fail validation: then the
# file itself is wrong (wrong units, wrong clock), not a few glitchy samples.
FILE_REJECT_SHARE = 0.5
# Files staged by one call (one worker's share at a time): a batch reader's files of a group
# are conformed and written together.
GROUP_FILES = 64
SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_WRITE_MUTEX = threading.Lock()


@dataclass
class FileResult:
    file: str
    sha256: str
    user_id: str
    format: str
    status: FileStatus
    rows: dict[str, int] = field(default_factory=dict)
    dropped_invalid: dict[str, int] = field(default_factory=dict)
    error: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    code: str = ""  # why it was quarantined or skipped (``safety.Code``)


@dataclass
class StagedFile:
    result: FileResult
    path: Path  # original bytes (for a quarantine copy)
    tables: dict[str, list[Path]] = field(default_factory=dict)
    # Validations already done while staging (``_AheadChecks``), keyed by (table, parts).
    checked: dict[tuple[str, tuple[Path, ...]], BatchCheck] = field(default_factory=dict)


@dataclass
class RunReport:
    files: list[FileResult] = field(default_factory=list)
    tables: dict[str, UpsertStats] = field(default_factory=dict)
    invalid_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per table: rows checked and the Great Expectations suite's expectations that ran on them.
    validated: dict[str, dict] = field(default_factory=dict)
    # Local dates that got rows in this run, per user: what the gold refresh must recompute.
    changed_dates: dict[str, list[date]] = field(default_factory=dict)

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def affected_users(self) -> list[str]:
        return sorted({f.user_id for f in self.files if f.status == FileStatus.INGESTED and f.rows})

    def to_dict(self) -> dict:
        return {
            "files_seen": len(self.files),
            "ingested": self.count(FileStatus.INGESTED),
            "already_seen": self.count(FileStatus.ALREADY_SEEN),
            "quarantined": self.count(FileStatus.QUARANTINED),
            "skipped": self.count(FileStatus.SKIPPED),
            "files": [asdict(f) for f in self.files],
            "tables": {k: asdict(v) for k, v in sorted(self.tables.items())},
            "invalid_rows": self.invalid_rows,
            "validated": self.validated,
            "changed_days": {u: len(d) for u, d in self.changed_dates.items()},
        }


@dataclass(frozen=True)
class Candidate:
    path: Path
    display: str
    user_id: str


def discover(paths: Iterable[Path], user_id: str) -> Iterator[Candidate]:
    """Files under the given paths (folders walked recursively, hidden files skipped)."""
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (
                    f.is_file()
                    and not any(x.startswith(".") for x in rel)
                    and f.name not in SKIP_NAMES
                ):
                    yield Candidate(f, str(f), user_id)
        elif p.is_file():
            yield Candidate(p, str(p), user_id)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")


def discover_inbox(inbox: Path) -> Iterator[Candidate]:
    """``<inbox>/<user>/…``: the first folder level names the user."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        return
    for user_dir in sorted(d for d in inbox.iterdir() if d.is_dir() and not d.name.startswith(".")):
        yield from discover([user_dir], user_dir.name)


def private_display(cand: Candidate, settings: Settings) -> str:
    """What messages, manifest and quarantine call a file: with a pseudonymisation key, the
    person's name in its path (``inbox/annika/export.xml``) becomes their lake id, since those
    documents live in the lake that is meant to carry no names."""
    lake_id = settings.user(cand.user_id).user_id
    if lake_id == cand.user_id or not cand.user_id:
        return cand.display
    return cand.display.replace(cand.user_id, lake_id)


def _staging(lake: Path, sha: str, user_id: str) -> Path:
    # Per user too: the same file delivered for two people is staged twice, not shared (a shared
    # folder let the second staging overwrite the first's rows: one person's night was lost).
    lake = lake_path(lake)
    if isinstance(lake, RemotePath):
        # Staging is scratch space on a file system (spilled Parquet, a member's bytes): for a
        # lake on object storage it lives on this machine (or on TUNEWELL_STAGING, a folder all
        # Dask workers share), one folder per lake.
        root = Path(os.environ.get("TUNEWELL_STAGING") or Path(tempfile.gettempdir()))
        tag = hashlib.sha256(str(lake).encode()).hexdigest()[:12]
        return root / f"tunewell-staging-{tag}" / f"{sha[:20]}-{user_id}"
    return lake / "staging" / f"{sha[:20]}-{user_id}"


def _quarantine(
    lake: Path,
    path: Path | None,
    res: FileResult,
    err: str,
    stage: QuarantineStage = QuarantineStage.READ,
    details: dict | None = None,
    code: safety.Code = safety.Code.READ_ERROR,
) -> None:
    res.status, res.error, res.code = FileStatus.QUARANTINED, err, str(code)
    manifest.quarantine(
        lake,
        path,
        manifest.QuarantineReason(
            res.file, res.sha256, res.user_id, res.format, err, stage, details or {}, code=code
        ),
    )
    manifest.record(
        lake,
        manifest.ManifestEntry(
            res.sha256, res.file, res.user_id, res.format, FileStatus.QUARANTINED, note=err
        ),
    )


def stage_file(
    path: Path,
    user: UserSettings,
    settings: Settings,
    *,
    display: str | None = None,
    options: dict | None = None,
    retry_quarantined: bool = False,
    depth: int = 0,
) -> list[StagedFile]:
    """Read one file (or every member of an archive no reader claims) into staging."""
    opened = _open(path, user, settings, display, options, retry_quarantined, depth)
    if isinstance(opened, list):
        return opened
    _read_into(opened, lake_path(settings.lake))
    return [opened.staged]


@dataclass
class _Opened:
    """A file a reader claimed, its staging folder emptied, not read yet."""

    reader: Reader
    ctx: FileContext
    staged: StagedFile
    stage: Path
    t0: float


def _open(
    path: Path,
    user: UserSettings,
    settings: Settings,
    display: str | None,
    options: dict | None,
    retry_quarantined: bool,
    depth: int,
) -> _Opened | list[StagedFile]:
    """Everything ``stage_file`` decides before a reader reads: the staged results of a file
    that is already seen, refused, skipped or an archive, or the reader that will read it."""
    lake = lake_path(settings.lake)
    display = display or str(path)
    t0 = time.perf_counter()
    sha = manifest.sha256_file(path)
    res = FileResult(display, sha, user.user_id, "unknown", FileStatus.STAGED)
    try:
        safety.check_user_id(user.user_id)
    except safety.UnsafeUserIdError as exc:  # nothing may be written under such a name
        res.status, res.error = FileStatus.SKIPPED, f"{display}: {exc}"
        res.code = safety.Code.UNSAFE_USER_ID
        return [StagedFile(res, Path(path))]
    seen = manifest.lookup(lake, sha, user.user_id)
    if seen and (
        seen.status not in (FileStatus.QUARANTINED, FileStatus.PARTIAL) or not retry_quarantined
    ):
        res.format, res.status = seen.format, FileStatus.ALREADY_SEEN
        return [StagedFile(res, Path(path))]
    head = read_head(path)
    limits = safety.limits_for(settings)
    plan = None
    if head.startswith(b"PK") and zipfile.is_zipfile(path):
        try:  # refuse bombs from the central directory before any reader inflates a byte
            if depth > limits.max_depth:
                raise safety.SafetyError(
                    safety.Code.ZIP_NESTED_TOO_DEEP,
                    f"{display}: archive nested {depth} deep (limit {limits.max_depth})",
                )
            plan = safety.inspect_zip(path, display, limits)
        except safety.SafetyError as exc:
            res.format = "zip"
            _quarantine(lake, Path(path), res, str(exc), details=exc.details, code=exc.code)
            return [StagedFile(res, Path(path))]
    try:
        reader = detect(path, head)
    except SnifferError as exc:
        if head.startswith(b"PK\x03\x04"):  # a sniffer tripped over a zip that cannot open
            res.format = "zip"
            msg = f"{display}: broken zip archive (cannot be opened: {exc})"
            _quarantine(lake, Path(path), res, msg, code=safety.Code.ZIP_BROKEN)
        else:
            res.format = guess_format(path, head)
            _quarantine(lake, Path(path), res, f"{display}: {exc}")
        return [StagedFile(res, Path(path))]
    if reader is None and plan is not None:
        return _stage_zip(
            path, user, settings, display, sha, options or {}, retry_quarantined, plan, depth
        )
    if reader is None and head.startswith(b"PK\x03\x04"):
        res.format = "zip"
        _quarantine(
            lake,
            Path(path),
            res,
            f"{display}: broken zip archive (cannot be opened)",
            code=safety.Code.ZIP_BROKEN,
        )
        return [StagedFile(res, Path(path))]
    if reader is None:
        try:  # a .fit that is no FIT, a .json that does not parse: refused, not skipped
            safety.check_unclaimed(path, head, display, limits)
        except safety.SafetyError as exc:
            res.format = guess_format(path, head)
            _quarantine(lake, Path(path), res, str(exc), details=exc.details, code=exc.code)
            return [StagedFile(res, Path(path))]
        res.format, res.status = guess_format(path, head), FileStatus.SKIPPED
        res.error = "no reader recognises this file's content"
        manifest.record(
            lake,
            manifest.ManifestEntry(
                sha, display, user.user_id, res.format, FileStatus.SKIPPED, note=res.error
            ),
        )
        return [StagedFile(res, Path(path))]
    res.format = reader.SOURCE
    staged = StagedFile(res, Path(path))
    stage = _staging(lake, sha, user.user_id)
    shutil.rmtree(stage, ignore_errors=True)
    ctx = FileContext(Path(path), display, sha, user, {**user.options, **(options or {})})
    return _Opened(reader, ctx, staged, stage, t0)


def _read_into(o: _Opened, lake: Path) -> None:
    """The file's rows into its staging folder, spilled every ``SPILL_ROWS`` rows."""
    try:
        pending: dict[str, list[pl.DataFrame]] = {}
        n = 0
        for tbl, df in o.reader.read(o.ctx):
            crashpoint("decode")
            if df.is_empty():
                continue
            pending.setdefault(tbl, []).append(df)
            n += df.height
            if n >= SPILL_ROWS:
                _spill(o.stage, pending, o.staged)
                pending, n = {}, 0
        _spill(o.stage, pending, o.staged)
        o.staged.result.notes = list(o.ctx.notes)
    except Exception as exc:  # whatever a reader raises is a property of this file
        _read_failed(lake, o, exc)
    o.staged.result.seconds = time.perf_counter() - o.t0


def _read_failed(lake: Path, o: _Opened, exc: Exception) -> None:
    """Quarantine a file its reader failed on, with the reader's words and the file's name."""
    shutil.rmtree(o.stage, ignore_errors=True)
    o.staged.tables.clear()
    if is_disk_error(exc):  # ... except a full or read-only disk: that stops the run
        if isinstance(exc, LakeWriteError):
            raise exc
        raise LakeWriteError(o.stage, cast(OSError, exc)) from exc
    res, display, path = o.staged.result, o.ctx.display, o.ctx.path
    msg = str(exc) if isinstance(exc, ReadError) else f"{type(exc).__name__}: {exc}"
    _quarantine(
        lake,
        Path(path),
        res,
        msg if msg.startswith(display) else f"{display}: {msg}",
        details=getattr(exc, "details", None),
        code=safety.classify(exc, o.reader.SOURCE, Path(path)),
    )


def stage_files(
    cands: list[Candidate], settings: Settings, options: dict, retry_quarantined: bool
) -> list[list[StagedFile]]:
    """``stage_file`` of each candidate, in order, except that the files of a ``BatchReader``
    (FIT) are decoded one by one and then conformed and written together, one staged part per
    table for up to ``SPILL_ROWS`` rows of consecutive files of one user. Per file and table,
    conform, the Parquet write and the commit's reads of each small part were most of a
    FIT year's cost. A file whose decode fails is quarantined alone, as by ``stage_file``; if
    conforming the gathered files fails, each is conformed alone, so only the file at fault
    is quarantined, with its own error."""
    lake = lake_path(settings.lake)
    out: list[list[StagedFile]] = []
    batch: list[tuple[_Opened, list[tuple[str, pl.DataFrame]]]] = []
    rows = 0
    for cand in cands:
        user = settings.user(cand.user_id)
        display = private_display(cand, settings)
        o = _open(cand.path, user, settings, display, options, retry_quarantined, 0)
        if isinstance(o, list):
            out.append(o)
            continue
        out.append([o.staged])
        if not isinstance(o.reader, BatchReader):
            _read_into(o, lake)
            continue
        first = batch[0][0] if batch else None
        if first and (first.reader is not o.reader or first.ctx.user.user_id != user.user_id):
            _flush(lake, batch)
            batch, rows = [], 0
        try:
            got = []
            for tbl, df in o.reader.frames(o.ctx):
                crashpoint("decode")
                got.append((tbl, df))
            o.staged.result.notes = list(o.ctx.notes)
        except Exception as exc:  # whatever a reader raises is a property of this file
            _read_failed(lake, o, exc)
        else:
            batch.append((o, got))
            rows += sum(df.height for _, df in got)
        o.staged.result.seconds = time.perf_counter() - o.t0
        if rows >= SPILL_ROWS:
            _flush(lake, batch)
            batch, rows = [], 0
    _flush(lake, batch)
    return out


def _flush(lake: Path, batch: list[tuple[_Opened, list[tuple[str, pl.DataFrame]]]]) -> None:
    """Conform the gathered files' frames per table and write one staged part per table, which
    every file with rows in that table lists (commit de-duplicates parts; rows keep file order,
    and commit and upsert tell files apart by ``source_file``)."""
    if not batch:
        return
    first = batch[0][0]
    reader = cast(BatchReader, first.reader)
    try:
        tables = list(reader.conform_frames((p for _, got in batch for p in got), first.ctx.user))
    except Exception:
        for o, got in batch:  # find the file at fault: each alone, as ``stage_file`` would
            try:
                pending = {t: [df] for t, df in reader.conform_frames(got, o.ctx.user)}
                _spill(o.stage, pending, o.staged)
            except Exception as exc:
                _read_failed(lake, o, exc)
        return
    where = _staging(lake, f"batch{uuid.uuid4().hex}", first.ctx.user.user_id)
    for tbl, df in tables:
        if df.is_empty():
            continue
        p = where / f"{tbl}-0.parquet"
        _write_part(p, df)
        for o, got in batch:
            if any(t == tbl and d.height for t, d in got):
                o.staged.tables.setdefault(tbl, []).append(p)


def _spill(stage: Path, pending: dict[str, list[pl.DataFrame]], staged: StagedFile) -> None:
    for tbl, frames in pending.items():
        if not frames:
            continue
        p = stage / f"{tbl}-{len(staged.tables.get(tbl, []))}.parquet"
        _write_part(p, pl.concat(frames, how="vertical_relaxed"))
        staged.tables.setdefault(tbl, []).append(p)


def _write_part(path: Path, df: pl.DataFrame) -> None:
    """Every Parquet file the ingest writes goes through the store's one write path, so a full
    or read-only disk fails the same way wherever it is met."""
    buf = io.BytesIO()
    df.write_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())


def _stage_zip(
    path: Path,
    user: UserSettings,
    settings: Settings,
    display: str,
    sha: str,
    options: dict,
    retry_quarantined: bool,
    plan: safety.ZipPlan,
    depth: int = 0,
) -> list[StagedFile]:
    """An archive no reader claims whole: stage its members one by one (they keep their bytes
    in staging, so the temporary extraction can go). Members the plan refused (zip slip,
    symlinks, encrypted, duplicates) are quarantined one by one; the others are read."""
    lake = lake_path(settings.lake)
    limits = safety.limits_for(settings)
    out: list[StagedFile] = []
    res = FileResult(display, sha, user.user_id, "zip", FileStatus.STAGED)
    for ref in plan.refused:
        mres = FileResult(
            f"{display}!{ref.member}",
            hashlib.sha256(f"{sha}!{ref.member}".encode()).hexdigest(),
            user.user_id,
            "zip_member",
            FileStatus.STAGED,
        )
        # No copy: the member's bytes were never extracted, the archive is kept whole if needed.
        _quarantine(lake, None, mres, f"{display}: {ref.reason}; not extracted", code=ref.code)
        out.append(StagedFile(mres, Path(path)))
    with tempfile.TemporaryDirectory(prefix="tunewell-zip-") as tmp:
        root = Path(tmp).resolve()
        try:
            with zipfile.ZipFile(path) as zf:
                for m in plan.members:
                    name = Path(m.filename)
                    if m.is_dir() or any(x.startswith(".") or x == "__MACOSX" for x in name.parts):
                        continue
                    target = (root / name).resolve()
                    if not target.is_relative_to(root):
                        continue  # never write outside the temp folder (zip-slip, again)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    safety.copy_member(zf, m, target, display, limits)
                    for s in stage_file(
                        target,
                        user,
                        settings,
                        display=f"{display}!{m.filename}",
                        options=options,
                        retry_quarantined=retry_quarantined,
                        depth=depth + 1,
                    ):
                        if s.result.status == FileStatus.STAGED:
                            # keep the member's bytes until commit, for a quarantine copy
                            where = _staging(lake, s.result.sha256, user.user_id)
                            keep = secure_mkdir(where) / "original"
                            shutil.move(target, keep)
                            s.path = keep
                        out.append(s)
                    target.unlink(missing_ok=True)
        except safety.SafetyError as exc:  # a member inflated past what its header promised
            _quarantine(lake, Path(path), res, str(exc), details=exc.details, code=exc.code)
            return [*out, StagedFile(res, Path(path))]
        except (zipfile.BadZipFile, EOFError) as exc:
            _quarantine(
                lake,
                Path(path),
                res,
                f"{display}: broken zip archive: {exc}",
                code=safety.Code.ZIP_BROKEN,
            )
            return [StagedFile(res, Path(path))]
    res.status = FileStatus.CONTAINER
    out.append(StagedFile(res, Path(path)))
    return out


def commit(staged: list[StagedFile], settings: Settings) -> RunReport:
    """Validate the run's staged rows per table, upsert what passed, record the manifest.

    Bounded memory: rows are validated in batches of staged parts of at most ``SPILL_ROWS`` rows
    (one validation per batch, not per part) and upserted one partition at a time
    (``store.upsert_files``), so a run never holds all of its rows. The result is that of
    validating and upserting their concatenation at once.
    """
    lake = lake_path(settings.lake)
    report = RunReport()
    live = [s for s in staged if s.tables and s.result.status == FileStatus.STAGED]
    parts: dict[str, list[Path]] = {}
    for s in live:
        for tbl, paths in s.tables.items():
            parts.setdefault(tbl, []).extend(paths)
    # A part staged for a batch of files is listed by each of them: read it once, in place.
    parts = {tbl: list(dict.fromkeys(paths)) for tbl, paths in parts.items()}
    total_of: dict[str, int] = {}  # rows staged per source file, all tables
    dropped: dict[tuple[str, str, str], int] = {}  # (table, sha, user) -> failed rows
    passed: dict[str, list[Path]] = {}
    done = {k: c for s in live for k, c in s.checked.items()}  # validated while staging
    for tbl, paths in sorted(parts.items()):
        rows, failures, bad_frames = 0, dict[str, int](), list[pl.DataFrame]()
        for batch in _batches(paths, SPILL_ROWS):
            c = done.pop((tbl, tuple(batch)), None) or _check_batch(tbl, batch)
            rows += c.rows
            for sha, n in c.per_file.items():
                total_of[sha] = total_of.get(sha, 0) + n
            if c.bad is not None:
                for name, n in c.failures.items():
                    failures[name] = failures.get(name, 0) + n
                for (sha, uid), n in c.dropped.items():
                    dropped[(tbl, sha, uid)] = dropped.get((tbl, sha, uid), 0) + n
                bad_frames.append(c.bad)
            passed.setdefault(tbl, []).extend(c.passed)
        report.validated[tbl] = {
            "rows": rows,
            "expectations": [x.name for x in validate.specs(tbl)],
        }
        if bad_frames:
            report.invalid_rows[tbl] = failures
            _write_bad_rows(lake, tbl, pl.concat(bad_frames, how="vertical_relaxed"))
    of_key: dict[tuple[str, str], list[StagedFile]] = {}  # (sha, user) -> its staged files
    for s in live:
        of_key.setdefault((s.result.sha256, s.result.user_id), []).append(s)
    for (tbl, sha, uid), n in dropped.items():
        for s in of_key.get((sha, uid), []):
            s.result.dropped_invalid[tbl] = n
    # Files whose rows mostly failed are rejected whole.
    rejected: set[str] = set()
    for s in live:
        total = total_of.get(s.result.sha256, 0)
        bad = sum(s.result.dropped_invalid.values())
        if total and bad / total > FILE_REJECT_SHARE:
            rejected.add(s.result.sha256)
            _quarantine(
                lake,
                s.path,
                s.result,
                f"{s.result.file}: {bad} of {total} rows failed validation",
                stage=QuarantineStage.VALIDATE,
                details={"failed": s.result.dropped_invalid},
                code=safety.Code.ROWS_FAILED_VALIDATION,
            )
    with _WRITE_MUTEX, lake_lock(lake):
        for tbl, files in passed.items():
            counted: dict[tuple[str, str], int] = {}

            def seen(part: pl.DataFrame, tbl: str = tbl, counted: dict = counted) -> None:
                if tbl not in CONTEXT_ONLY:
                    _note_dates(report, part)
                for sha, uid, n in part.group_by("source_file", "user_id").len().iter_rows():
                    counted[(sha, uid)] = counted.get((sha, uid), 0) + n

            report.tables[tbl] = upsert_files(
                lake, tbl, files, exclude_files=rejected, on_rows=seen
            )
            for key, n in counted.items():
                for s in of_key.get(key, []):
                    s.result.rows[tbl] = n
        crashpoint("silver_written")  # rows in, files not yet marked ingested
        manifest.add_pending(lake, report.changed_dates)
        for s in staged:
            r = s.result
            if r.status == FileStatus.STAGED:
                r.status = FileStatus.INGESTED
                manifest.release(lake, r.sha256, r.user_id)  # a retried file leaves quarantine
            elif r.status == FileStatus.CONTAINER:
                # An archive with a rejected member is "partial": --retry-quarantined opens it
                # again (its good members are then already seen), a plain run skips it.
                bad = any(
                    o.result.status == FileStatus.QUARANTINED
                    and o.result.file.startswith(f"{r.file}!")
                    for o in staged
                )
                r.status = FileStatus.PARTIAL if bad else FileStatus.INGESTED
            else:
                continue
            manifest.record(
                lake,
                manifest.ManifestEntry(
                    r.sha256, r.file, r.user_id, r.format, r.status, rows=r.rows
                ),
            )
    for folder in {p.parent for paths in parts.values() for p in paths}:
        shutil.rmtree(folder, ignore_errors=True)  # batch parts live in folders of their own
    for s in staged:
        shutil.rmtree(_staging(lake, s.result.sha256, s.result.user_id), ignore_errors=True)
        if s.result.format != "zip" or s.result.status not in (
            FileStatus.INGESTED,
            FileStatus.PARTIAL,
        ):
            report.files.append(s.result)
    return report


@dataclass
class BatchCheck:
    """One Great Expectations validation of a batch of staged parts of a table: what commit
    needs of it (the failing rows themselves, their counts, the parts holding the rows that
    passed), so it can be done ahead, while other files are still being staged."""

    rows: int
    per_file: dict[str, int]  # rows per source file (passed or not)
    passed: list[Path]  # the batch's parts, or one part of its passing rows
    failures: dict[str, int] = field(default_factory=dict)
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)  # (sha, user) -> rows
    bad: pl.DataFrame | None = None  # failing rows, with the expectation they failed


def _check_batch(tbl: str, batch: list[Path]) -> BatchCheck:
    df = pl.concat([pl.read_parquet(p) for p in batch], how="vertical_relaxed")
    per_file = dict(df.group_by("source_file").len().iter_rows())
    out = validate.check(tbl, df)
    c = BatchCheck(df.height, per_file, list(batch))
    del df
    if out.bad.height:
        c.failures = dict(out.failures)
        c.dropped = {
            (sha, uid): n
            for sha, uid, n in out.bad.group_by("source_file", "user_id").len().iter_rows()
        }
        c.bad = out.bad
        p = batch[0].with_name(f"{batch[0].stem}.valid.parquet")
        _write_part(p, out.good)
        c.passed = [p]
    return c


class _AheadChecks:
    """Commit's validations, run in a thread of this process while worker processes stage
    the files (this process only waits for them then): the serial commit that is left is
    the upsert. Staged files arrive in candidate order; each table's parts are grouped
    exactly as commit groups them (``_batches``: consecutive parts up to ``SPILL_ROWS`` rows),
    so commit finds every batch it would validate already done and takes the result; the
    last, unfinished batch of each table is done in ``finish``. The checks go onto the staged
    files (``StagedFile.checked``), keyed by (table, parts). A failure here is not an error:
    commit then validates that batch itself, as without this."""

    def __init__(self) -> None:
        import queue

        self._q: queue.Queue[tuple[str, list[Path], StagedFile] | None] = queue.Queue()
        self._open: dict[str, tuple[list[Path], int, StagedFile]] = {}
        self._seen: set[Path] = set()
        self._thread = threading.Thread(target=self._run, name="tunewell-checks", daemon=True)
        self._thread.start()

    def add(self, files: list[StagedFile]) -> None:
        for s in files:
            if s.result.status != FileStatus.STAGED:
                continue
            for tbl, paths in s.tables.items():
                for p in paths:
                    if p not in self._seen:  # a batch part listed by each of its files
                        self._seen.add(p)
                        self._part(tbl, p, s)

    def _part(self, tbl: str, p: Path, owner: StagedFile) -> None:
        batch, n, holder = self._open.get(tbl, ([], 0, owner))
        k = _rows_of(p)
        if _closes(batch, n, k, SPILL_ROWS):
            self._q.put((tbl, batch, holder))
            batch, n = [], 0
        self._open[tbl] = ([*batch, p], n + k, owner)

    def finish(self, complete: bool = True) -> None:
        """Validate the last batches (unless staging stopped short) and wait for the thread."""
        for tbl, (batch, _, owner) in self._open.items() if complete else ():
            self._q.put((tbl, batch, owner))
        self._q.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            tbl, batch, owner = job
            try:
                owner.checked[(tbl, tuple(batch))] = _check_batch(tbl, batch)
            except Exception:  # commit validates this batch again, and reports what went wrong
                continue


def _batches(paths: list[Path], max_rows: int) -> Iterator[list[Path]]:
    """Staged parts grouped into runs of at most ``max_rows`` rows (a part larger than that is a
    batch of its own). A nightly of hundreds of small FIT files stages hundreds of small parts
    per table, and one validation costs ~0.1 s whatever its size, so each part validated alone
    made the commit cost grow with the file count (1,288 files: minutes of GX runs)."""
    batch: list[Path] = []
    n = 0
    for p in paths:
        k = _rows_of(p)
        if _closes(batch, n, k, max_rows):
            yield batch
            batch, n = [], 0
        batch.append(p)
        n += k
    if batch:
        yield batch


def _closes(batch: list[Path], rows: int, more: int, max_rows: int) -> bool:
    """Whether a part of ``more`` rows starts a new batch: the one grouping rule that commit
    (``_batches``) and the checks done ahead (``_AheadChecks``) must share, or commit would not
    find the batches validated ahead."""
    return bool(batch) and rows + more > max_rows


def _rows_of(part: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(part).metadata.num_rows


def _note_dates(report: RunReport, df: pl.DataFrame) -> None:
    days = df.select("user_id", local_date().alias("d")).unique()
    for (user,), part in days.group_by(["user_id"]):
        known = set(report.changed_dates.get(user, []))
        report.changed_dates[user] = sorted(known | set(part["d"].to_list()))


def _write_bad_rows(lake: Path, tbl: str, bad: pl.DataFrame) -> None:
    qdir = secure_mkdir(lake_path(lake) / "quarantine" / "rows")
    _write_part(qdir / f"{tbl}-{uuid.uuid4().hex[:12]}.parquet", bad)


def ingest_paths(
    paths: Iterable[Path],
    user_id: str,
    settings: Settings,
    *,
    options: dict | None = None,
    retry_quarantined: bool = False,
    on_file: Callable[[Candidate], None] | None = None,
    workers: int | None = None,
) -> RunReport:
    """Ingest files and folders for one user (the CLI's ``tunewell ingest``)."""
    safety.check_user_id(settings.user(user_id).user_id)
    return ingest_candidates(
        discover(paths, user_id),
        settings,
        options=options,
        retry_quarantined=retry_quarantined,
        on_file=on_file,
        workers=workers,
    )


def ingest_candidates(
    candidates: Iterable[Candidate],
    settings: Settings,
    *,
    options: dict | None = None,
    retry_quarantined: bool = False,
    on_file: Callable[[Candidate], None] | None = None,
    workers: int | None = None,
) -> RunReport:
    """Stage every candidate, then commit them in one go.

    ``workers`` > 1 (default: the ``[ingest] workers`` setting) stages files in that many
    processes: decoding a FIT or JSON file is pure-Python CPU work that threads cannot share.
    Staging is per file and its result is a small ``StagedFile`` (paths to staging Parquet), so
    only those travel back; results are taken in candidate order and the commit stays here, one
    writer, so the lake is the one a single process writes.
    """
    n_workers = settings.ingest_workers if workers is None else workers
    init_lake(settings.lake)
    with run_lock(settings.lake):  # a second run waits or exits naming this one
        staged: list[StagedFile] = []
        for cand, files in _stage_all(
            candidates, settings, options or {}, retry_quarantined, n_workers
        ):
            staged += files
            if on_file is not None:
                on_file(cand)
        return commit(staged, settings)


def _stage_all(
    candidates: Iterable[Candidate],
    settings: Settings,
    options: dict,
    retry_quarantined: bool,
    workers: int,
) -> Iterator[tuple[Candidate, list[StagedFile]]]:
    """(candidate, its staged files) in candidate order, from this process or a pool."""
    cands = list(candidates)
    yield from zip(
        cands, stage_candidates(cands, settings, options, retry_quarantined, workers), strict=True
    )


def stage_candidates(
    cands: list[Candidate],
    settings: Settings,
    options: dict,
    retry_quarantined: bool,
    workers: int = 1,
) -> Iterator[list[StagedFile]]:
    """Each candidate's staged files, in candidate order, staged here or in ``workers``
    processes. Groups of consecutive files go to one call (``stage_files``), so a batch
    reader's files are conformed and written together; groups are small enough that every
    worker gets several. Callers hold the run lock: batch folders found on entry belong to a
    run that crashed, and are removed."""
    if cands:  # batch parts a crashed run left (its files are staged again now)
        root = _staging(settings.lake, "batch", "-").parent
        for old in root.glob("batch*") if root.is_dir() else ():
            shutil.rmtree(old, ignore_errors=True)
    size = GROUP_FILES if workers <= 1 else -(-len(cands) // (4 * workers))
    size = max(1, min(GROUP_FILES, size))
    groups = [cands[i : i + size] for i in range(0, len(cands), size)]
    # With workers this process is idle while they stage: it validates what they staged.
    ahead = _AheadChecks() if workers > 1 and len(groups) > 1 else None
    complete = False
    try:
        for staged in map_in_processes(
            stage_files, groups, settings, options, retry_quarantined, workers=workers
        ):
            if ahead is not None:
                for files in staged:
                    ahead.add(files)
            yield from staged
        complete = True
    finally:
        if ahead is not None:
            ahead.finish(complete)


def map_in_processes(fn: Callable[..., R], items: list, *args: object, workers: int) -> Iterator[R]:
    """``fn(item, *args)`` for every item, in item order: here when ``workers`` <= 1, else in that
    many spawned processes. spawn, not fork: the parent may hold polars' thread pool and locks,
    which fork would copy mid-use. Workers pay their imports once (~1 s), then take items in small
    chunks; only the arguments and results travel, so both must be small (paths, not frames)."""
    if workers <= 1 or len(items) < 2:
        for item in items:
            yield fn(item, *args)
        return
    n = min(workers, len(items))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        yield from pool.map(
            fn,
            items,
            *(itertools.repeat(a) for a in args),
            chunksize=max(1, min(16, len(items) // (8 * n))),
        )
