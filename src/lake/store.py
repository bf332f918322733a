"""The Parquet store: hive-partitioned tables, atomic idempotent upserts, one writer at a time.

Layout: ``<lake>/<layer>/<table>/user_id=<id>/year=<yyyy>/part-0.parquet``. A partition is
rewritten whole on every upsert (read, replace rows by ``record_id``, write to a temporary file,
fsync, rename), so a crash at any point leaves either the old or the new file, never half of one,
and replaying the same rows changes nothing. Health data: files are 0600, folders 0700.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tunewell.lake.crash import crashpoint
from tunewell.lake.frames import empty, to_arrow
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.lake.schemas import TABLES, dictionary_markdown, table

FILE_MODE = 0o600
DIR_MODE = 0o700
PART_FILE = "part-0.parquet"
# Rows per Parquet row group of a partition file (see ``_write_partition``).
ROW_GROUP_ROWS = 16_384


class LakeLockedError(RuntimeError):
    pass


class LakeWriteError(OSError):
    """The lake could not be written (disk full, read-only, quota): names the path; what was
    there before is untouched, since every write goes to a temporary file first."""

    def __init__(self, path: Path, exc: OSError) -> None:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        super().__init__(
            exc.errno,
            f"cannot write {path}: {why}. Nothing was half-written and the lake is as it was "
            "before this write; free space (or make the lake writable) and run again",
        )
        self.path = path


# Errors of the disk, not of an input file: they abort the run instead of quarantining a file.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


class UnsafeUserIdError(ValueError):
    """A user id that cannot safely become a folder name in the lake."""


# Letters, digits and ``. _ @ + -``, not starting with a dot, at most 64: every id becomes a path
# component (``user_id=<id>``, manifest names), so ``../``, ``/``, NUL, spaces or shell characters
# are refused instead of encoded (an encoded id would differ from what the person typed).
_USER_ID = re.compile(r"[A-Za-z0-9_@+\-][A-Za-z0-9._@+\-]{0,63}")


def check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id) or ".." in user_id:
        raise UnsafeUserIdError(
            f"user id {user_id!r} is not allowed: use 1-64 letters, digits or . _ @ + - "
            "(no '/', '..', NUL, spaces or shell characters, not starting with a dot)"
        )
    return user_id


def secure_mkdir(path: Path) -> Path:
    """Create ``path`` (and parents inside the lake) owner-only."""
    if isinstance(path, RemotePath):
        return path  # no folders in an object store
    old = os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    with contextlib.suppress(OSError):  # not ours, or a read-only lake (its writes will say so)
        path.chmod(DIR_MODE)
    return path


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of the lake passes here (a separate function so tests can fill the disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via temp file + fsync + rename, so readers never see a partial file. A full or
    read-only disk raises ``LakeWriteError`` naming the path, with the old file intact.

    On object storage there is no rename, and none is needed: one PUT replaces the object
    atomically (readers get the old or the new one), so the bytes are sent in a single PUT.
    """
    if isinstance(path, RemotePath):
        crashpoint("before_put")
        _put(path, data)
        crashpoint("after_put")
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        secure_mkdir(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        crashpoint("before_rename")
        _replace(tmp, path)
    except OSError as exc:
        if is_disk_error(exc):
            raise LakeWriteError(path, exc) from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    crashpoint("after_rename")
    _fsync_dir(path.parent)


def _replace(tmp: Path, path: Path) -> None:
    """The commit point of every write (a separate function so tests can simulate a crash here)."""
    tmp.replace(path)


def _put(path: RemotePath, data: bytes) -> None:
    """The commit point of every write to object storage (tests simulate a crash here)."""
    path.write_bytes(data)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def table_dir(lake: Path, name: str) -> Path:
    return lake_path(lake) / table(name).layer / name


class _PartitionEncoder:
    """A partition file encoded in row groups of ``ROW_GROUP_ROWS`` rows as its rows arrive.

    Each row group is converted to Arrow and encoded on its own, so the Arrow copy and the
    encoder's buffers follow a row group, not the partition (a 262k-row heart-rate year: +125
    MB for the one-piece ``write_table``, +60 MB in 16k-row groups; the file grew 7 → 9 MB).
    Row groups are cut at the same offsets however the rows arrive (one frame or many pieces),
    so the bytes depend only on the rows; a partition within one row group is byte-identical
    to the one-piece ``write_table``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.sink = pa.BufferOutputStream()
        self.writer: pq.ParquetWriter | None = None
        self.carry: pl.DataFrame | None = None

    def _group(self, df: pl.DataFrame) -> None:
        tbl = to_arrow(df, self.name).drop(["user_id"])
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.sink, tbl.schema, compression="zstd")
        self.writer.write_table(tbl)

    def add(self, df: pl.DataFrame) -> None:
        if self.carry is not None:
            df = pl.concat([self.carry, df], how="vertical_relaxed")
        full = df.height // ROW_GROUP_ROWS * ROW_GROUP_ROWS
        for offset in range(0, full, ROW_GROUP_ROWS):
            self._group(df.slice(offset, ROW_GROUP_ROWS))
        self.carry = df.slice(full) if full < df.height else None

    def finish(self) -> bytes:
        if self.carry is not None or self.writer is None:
            self._group(self.carry if self.carry is not None else empty(self.name))
        assert self.writer is not None
        self.writer.close()
        return self.sink.getvalue().to_pybytes()


def _write_partition(path: Path, df: pl.DataFrame, name: str) -> None:
    enc = _PartitionEncoder(name)
    enc.add(df)
    atomic_write_bytes(path, enc.finish())


@dataclass
class UpsertStats:
    table: str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_in_batch: int = 0
    partitions: int = 0

    def add(self, other: UpsertStats) -> None:
        for f in (
            "rows_in",
            "inserted",
            "updated",
            "unchanged",
            "duplicates_in_batch",
            "partitions",
        ):
            setattr(self, f, getattr(self, f) + getattr(other, f))


def _year_expr(name: str) -> pl.Expr:
    t = table(name)
    col = pl.col(t.time_column)
    return col.dt.year().cast(pl.Int32)


def upsert(lake: Path, name: str, df: pl.DataFrame) -> UpsertStats:
    """Insert or replace rows by ``record_id``; the batch's last row wins within the batch."""
    stats = UpsertStats(name, rows_in=df.height)
    if df.is_empty():
        return stats
    df = df.select(table(name).names).with_columns(_year_expr(name).alias("__year"))
    for (user, year), part in df.group_by(["user_id", "__year"], maintain_order=True):
        _upsert_partition(lake, name, str(user), year, part.drop("__year"), stats)
    return stats


def upsert_files(
    lake: Path,
    name: str,
    files: Sequence[Path],
    *,
    exclude_files: Collection[str] = (),
    on_rows: Callable[[pl.DataFrame], None] | None = None,
) -> UpsertStats:
    """``upsert`` of the rows staged in Parquet ``files``, one (user, year) partition at a time.

    Memory never holds the whole run's rows: a 1 GB export's rows are read from staging once
    per partition they touch (a filtered scan). A partition that has no file yet and whose rows
    arrive in time order with distinct ids (a first ingest) is streamed into its file piece by
    piece (``_write_new_partition``), so memory follows one staged file; otherwise the
    partition's new and old rows are merged in memory. Files are read in order, so the last
    staged row of a ``record_id`` still wins, exactly as ``upsert`` of their concatenation (a
    record id fixes its user and its time, hence its partition). ``exclude_files`` drops the
    rows of rejected source files; ``on_rows`` sees every row of each partition once, before
    de-duplication (in one frame or in pieces).
    """
    stats = UpsertStats(name)
    keep = ~pl.col("source_file").is_in(list(exclude_files)) if exclude_files else pl.lit(True)
    year = _year_expr(name).alias("__year")
    # Which partitions each file has (two columns read): a partition then reads only its files,
    # one at a time, so no more than one staged file is decoded at once.
    held: dict[tuple[str, int | None], list[Path]] = {}
    for f in files:
        keys = pl.scan_parquet(f).filter(keep).select("user_id", year).unique(maintain_order=True)
        for key in keys.collect().iter_rows():
            held.setdefault(key, []).append(Path(f))
    cols = table(name).names
    for (user, yr), where in held.items():
        mine = keep & pl.col("user_id").eq_missing(user) & year.eq_missing(yr)

        def pieces(where: list[Path] = where, mine: pl.Expr = mine) -> Iterator[pl.DataFrame]:
            for f in where:
                yield pl.scan_parquet(f).filter(mine).select(cols).collect()

        path = _partition_path(lake, name, str(user), yr)
        if not path.exists():  # a first ingest: stream the rows into the file piece by piece
            if _write_new_partition(path, name, pieces(), stats, on_rows):
                continue
            seen = None  # not sorted or not distinct: merge in memory (rows already seen)
        else:
            seen = on_rows
        parts = list(pieces())
        part = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
        del parts
        if seen is not None:
            stats.rows_in += part.height
            seen(part)
        _upsert_partition(lake, name, str(user), yr, part, stats)
        del part
    return stats


def _partition_path(lake: Path, name: str, user: str, year: int | None) -> Path:
    return table_dir(lake, name) / f"user_id={check_user_id(user)}" / f"year={year}" / PART_FILE


def _sort_keys(name: str) -> list[str]:
    """The order a partition file's rows are kept in."""
    t = table(name)
    return [c for c in ("start_utc", t.time_column, "record_id") if c in t.names]


def _write_new_partition(
    path: Path,
    name: str,
    pieces: Iterator[pl.DataFrame],
    stats: UpsertStats,
    on_rows: Callable[[pl.DataFrame], None] | None,
) -> bool:
    """Write a partition that has no file yet from its staged pieces without concatenating
    them, when their rows arrive strictly in time order with distinct record ids (what a first
    ingest of an export yields): memory then follows one staged piece and one row group, not
    the partition. The file is what ``_upsert_partition`` writes for the same rows (it would
    neither de-duplicate nor sort them). Returns False, writing nothing, when the rows are not
    in order or not distinct; every piece has been counted and shown to ``on_rows`` either way.
    """
    order = _sort_keys(name)[0]
    enc: _PartitionEncoder | None = _PartitionEncoder(name)
    ids: list[pl.Series] = []
    last = None
    rows = 0
    for piece in pieces:
        stats.rows_in += piece.height
        rows += piece.height
        if on_rows is not None:
            on_rows(piece)
        if enc is None or piece.is_empty():
            continue
        first = piece[order][0]
        if not _strictly_increasing(piece, order) or (last is not None and not first > last):
            enc = None  # fall back; keep reading so every piece is counted and seen
            continue
        last = piece[order][-1]
        ids.append(piece["record_id"])
        enc.add(piece)
    if enc is None or not rows or pl.concat(ids).n_unique() != rows:
        return False
    data = enc.finish()
    stats.inserted += rows
    crashpoint(f"{table(name).layer}_partition")
    atomic_write_bytes(path, data)
    stats.partitions += 1
    return True


def _upsert_partition(
    lake: Path, name: str, user: str, year: int | None, new: pl.DataFrame, stats: UpsertStats
) -> None:
    """Merge one partition's new rows into its file; an unchanged partition is not written."""
    t = table(name)
    before = new.height
    if new.select(pl.col("record_id").n_unique()).item() != before:  # cheaper than unique()
        new = new.unique(subset="record_id", keep="last", maintain_order=True)
    stats.duplicates_in_batch += before - new.height
    path = _partition_path(lake, name, user, year)
    if path.exists():
        old = read_partition(path, name, user)
        hit = old.join(new.select("record_id"), on="record_id", how="semi")
        same = hit.join(new, on=t.names, how="semi", nulls_equal=True)
        stats.unchanged += same.height
        stats.updated += hit.height - same.height
        stats.inserted += new.height - hit.height
        if hit.height == same.height == new.height:
            return  # nothing new: leave the file untouched (cheap idempotent re-runs)
        kept = old.join(new.select("record_id"), on="record_id", how="anti")
        del old
        merged = pl.concat([kept, new], how="vertical_relaxed")
    else:
        stats.inserted += new.height
        merged = new
    order = _sort_keys(name)
    if not _strictly_increasing(merged, order[0]):  # a first ingest usually arrives in order
        merged = merged.sort(order)
    crashpoint(f"{t.layer}_partition")
    _write_partition(path, merged, name)
    stats.partitions += 1


def _strictly_increasing(df: pl.DataFrame, col: str) -> bool:
    """Already sorted by ``col`` without ties, hence by any key list that starts with it."""
    s = df[col]
    if s.null_count() or not (s.dtype.is_temporal() or s.dtype.is_numeric()):
        return False
    return df.height < 2 or bool((s.to_physical().diff().drop_nulls() > 0).all())


def replace_partitions(
    lake: Path, name: str, df: pl.DataFrame, users: list[str], years: list[int]
) -> UpsertStats:
    """Overwrite whole (user, year) partitions of a derived table (gold recomputes).

    Partitions listed but absent from ``df`` are emptied, so rows that no longer follow from the
    inputs disappear instead of lingering.
    """
    stats = UpsertStats(name, rows_in=df.height)
    base = table_dir(lake, name)
    df = df.select(table(name).names).with_columns(_year_expr(name).alias("__year"))
    for user in users:
        check_user_id(user)
        for year in years:
            part = df.filter((pl.col("user_id") == user) & (pl.col("__year") == year))
            path = base / f"user_id={user}" / f"year={year}" / PART_FILE
            crashpoint("gold_partition")
            if part.is_empty():
                if path.exists():
                    path.unlink()
                continue
            _write_partition(path, part.drop("__year"), name)
            stats.inserted += part.height
            stats.partitions += 1
    return stats


def read_partition(path: Path, name: str, user: str) -> pl.DataFrame:
    tbl = pq.read_table(
        pa.BufferReader(path.read_bytes()) if isinstance(path, RemotePath) else path
    )
    df = pl.from_arrow(tbl)
    assert isinstance(df, pl.DataFrame)
    return df.with_columns(pl.lit(user, dtype=pl.String).alias("user_id")).select(table(name).names)


def scan(lake: Path, name: str, users: list[str] | None = None) -> pl.LazyFrame:
    """Lazy view of a table; absent tables read as empty frames with the right schema."""
    base = table_dir(lake, name)
    files = sorted(base.glob(f"user_id=*/year=*/{PART_FILE}")) if base.exists() else []
    if users is not None:
        files = [f for f in files if f.parent.parent.name.removeprefix("user_id=") in users]
    if not files:
        return empty(name).lazy()
    if isinstance(base, RemotePath):
        # Read over fsspec (the same credentials and endpoint as the writes), one object each.
        parts = [
            read_partition(f, name, f.parent.parent.name.removeprefix("user_id=")) for f in files
        ]
        return pl.concat(parts, how="vertical_relaxed").lazy()
    lf = pl.scan_parquet(
        files,
        hive_partitioning=True,
        hive_schema={"user_id": pl.String, "year": pl.Int32},
    )
    return lf.select(table(name).names)


def read(lake: Path, name: str, users: list[str] | None = None) -> pl.DataFrame:
    return scan(lake, name, users).collect()


def users_in(lake: Path) -> list[str]:
    found: set[str] = set()
    for layer in ("silver", "gold"):
        for p in (lake_path(lake) / layer).glob("*/user_id=*"):
            found.add(p.name.removeprefix("user_id="))
    return sorted(found)


def init_lake(lake: Path) -> Path:
    """Create the lake folders and write the data dictionary (idempotent)."""
    lake = lake_path(lake)
    secure_mkdir(lake)
    for sub in ("silver", "gold", "manifest", "quarantine", "reports"):
        secure_mkdir(lake / sub)
    text = dictionary_markdown()
    dic = lake / "DICTIONARY.md"
    if not dic.exists() or dic.read_text() != text:
        atomic_write_bytes(dic, text.encode())
    return lake


@contextlib.contextmanager
def lake_lock(lake: Path, *, wait_s: float | None = None) -> Iterator[Path]:
    """One writer per lake. A second writer gets a clear error naming the holder.

    An advisory ``flock`` on ``<lake>/.lock``: the kernel releases it when the holder exits, even
    by a crash, so a dead writer never wedges the lake and no "stale lock" guessing (with its
    races between two processes cleaning up at once) is needed. The file records host, pid and
    start time of the current holder for the message.
    """
    lake = init_lake(lake)
    with _flock(lake, lake / ".lock", wait_s, "being written by another tunewell process"):
        sweep_temp_files(lake)
        yield lake


_RUNS: dict[Path | RemotePath, int] = {}


@contextlib.contextmanager
def run_lock(lake: Path, *, wait_s: float | None = None) -> Iterator[Path]:
    """One run (ingest or nightly) per lake, for the whole run, not only its commits: two runs
    staging the same file would share ``staging/<sha>`` and one would delete the other's rows.
    A second run waits up to ``TUNEWELL_LOCK_WAIT_S`` seconds, then exits naming the holder.
    Re-entrant within a process (a flow's tasks run in threads of the run that holds it)."""
    lake = init_lake(lake)
    key = lake if isinstance(lake, RemotePath) else lake.resolve()
    if _RUNS.get(key):
        _RUNS[key] += 1
        try:
            yield lake
        finally:
            _RUNS[key] -= 1
        return
    with _flock(lake, lake / ".run.lock", wait_s, "in use by another tunewell run"):
        _RUNS[key] = 1
        try:
            yield lake
        finally:
            _RUNS.pop(key, None)


@contextlib.contextmanager
def _flock(lake: Path, path: Path, wait_s: float | None, what: str) -> Iterator[None]:
    if wait_s is None:  # by default a second writer is told at once, not left hanging
        wait_s = float(os.environ.get("TUNEWELL_LOCK_WAIT_S", "0"))
    if isinstance(path, RemotePath):
        with _object_lock(path, wait_s, what):
            yield
        return
    deadline = time.monotonic() + wait_s
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        if is_disk_error(exc):
            raise LakeWriteError(path, exc) from exc
        raise
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _lock_holder(path)
                    waited = f" after waiting {wait_s:.0f} s" if wait_s else ""
                    raise LakeLockedError(
                        f"the lake at {lake} is {what} ({holder or 'unknown holder'}){waited}; "
                        "wait for it to finish, or set TUNEWELL_LOCK_WAIT_S to wait for it"
                    ) from None
                time.sleep(0.2)
        with contextlib.suppress(OSError):  # the holder's name is a courtesy: a full disk
            os.ftruncate(fd, 0)  # must fail at the first real write, with its path, not here
            os.pwrite(fd, f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


def sweep_temp_files(lake: Path) -> int:
    """Delete temporary files that a killed writer left behind (``.<name>.<pid>.tmp`` whose pid
    is gone). Readers never see them (hidden, not ``part-0.parquet``); this keeps them from piling
    up. A live process's temporary file is left alone: it may be about to be renamed."""
    gone = 0
    if isinstance(lake, RemotePath):
        return 0  # a PUT leaves no temporary object behind
    for p in Path(lake).rglob(".*.tmp"):
        m = _TMP.match(p.name)
        if m is None or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            gone += 1
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A lock object older than this is taken to belong to a dead writer (object stores cannot tell
# whether its holder still lives, as flock can). Longer than the nightly flow's own timeout.
OBJECT_LOCK_TTL_S = 6 * 60 * 60


@contextlib.contextmanager
def _object_lock(path: RemotePath, wait_s: float, what: str) -> Iterator[None]:
    """One writer on object storage: create ``<lake>/.lock`` with a conditional PUT
    (``If-None-Match: *``), which the store grants to exactly one of any number of racing
    writers; delete it when done. DESIGN.md explains the stale-lock rule and its limits."""
    ttl = float(os.environ.get("TUNEWELL_LOCK_TTL_S", OBJECT_LOCK_TTL_S))
    token = f"{socket.gethostname()} {os.getpid()} {time.time():.0f} {os.urandom(8).hex()}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            path.create_exclusive(f"{token}\n".encode())
            break
        except FileExistsError:
            holder = _lock_holder(path)
            if holder and _expired(holder, ttl):
                with contextlib.suppress(FileNotFoundError):
                    if _lock_holder(path) == holder:  # still the same dead holder
                        path.unlink()
                continue
            if time.monotonic() >= deadline:
                raise LakeLockedError(
                    f"the lake at {path.parent} is {what} ({holder or 'unknown holder'}); "
                    "wait for it to finish, or set TUNEWELL_LOCK_WAIT_S to wait for it"
                ) from None
            time.sleep(0.5)
    try:
        yield
    finally:
        if _lock_holder(path) == token:
            path.unlink(missing_ok=True)


def _expired(holder: str, ttl: float) -> bool:
    try:
        return time.time() - float(holder.split()[2]) > ttl
    except (IndexError, ValueError):
        return False


def _lock_holder(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (OSError, FileNotFoundError):
        return None


def table_names(layer: str | None = None) -> list[str]:
    return [n for n, t in TABLES.items() if layer is None or t.layer == layer]
