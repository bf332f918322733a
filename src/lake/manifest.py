"""The file lifecycle on disk: which files were ingested (manifest) and which were rejected
(quarantine), each with the reason, so nothing is silently skipped and nothing is read twice.

The manifest is one small JSON document per file and user, keyed by the file's SHA-256, written
atomically; it is written only after all of a file's rows are in the lake, so a crash mid-file
means the file is read again on the next run (and the idempotent upsert makes that harmless).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from tunewell.lake.crash import crashpoint
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.lake.store import (
    FILE_MODE,
    LakeWriteError,
    atomic_write_bytes,
    check_user_id,
    is_disk_error,
    secure_mkdir,
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class FileStatus(StrEnum):
    """What happened to a file in a run (the manifest keeps the last of these per file)."""

    STAGED = "staged"  # read into staging, not yet committed
    CONTAINER = "container"  # an archive whose members are staged as files of their own
    INGESTED = "ingested"
    PARTIAL = "partial"  # an archive some of whose members were quarantined
    ALREADY_SEEN = "already_seen"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"  # no reader recognises the content


class QuarantineStage(StrEnum):
    """Where a file was rejected: reading it, or validating its rows."""

    READ = "read"
    VALIDATE = "validate"


@dataclass
class ManifestEntry:
    sha256: str
    path: str
    user_id: str
    format: str
    status: FileStatus
    rows: dict[str, int] = field(default_factory=dict)
    note: str = ""
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        self.status = FileStatus(self.status)  # read back from JSON as a plain string


def _entry_path(lake: Path, sha: str, user_id: str) -> Path:
    # Keyed by file *and* user: one research file (Fitabase) can hold several participants.
    return lake_path(lake) / "manifest" / sha[:2] / f"{sha}.{check_user_id(user_id)}.json"


def lookup(lake: Path, sha: str, user_id: str) -> ManifestEntry | None:
    p = _entry_path(lake, sha, user_id)
    if not p.exists():
        return None
    return ManifestEntry(**json.loads(p.read_text()))


def record(lake: Path, entry: ManifestEntry) -> None:
    crashpoint("manifest_update")
    atomic_write_bytes(
        _entry_path(lake, entry.sha256, entry.user_id),
        json.dumps(asdict(entry), indent=1, sort_keys=True).encode(),
    )


def entries(lake: Path) -> list[ManifestEntry]:
    base = lake_path(lake) / "manifest"
    return [ManifestEntry(**json.loads(p.read_text())) for p in sorted(base.glob("*/*.json"))]


@dataclass
class QuarantineReason:
    file: str
    sha256: str
    user_id: str
    format_guess: str
    error: str
    stage: QuarantineStage = QuarantineStage.READ
    details: dict = field(default_factory=dict)
    # Machine-readable reason (``tunewell.ingest.safety.Code`` values, e.g. ``zip_bomb``).
    code: str = "read_error"
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        self.stage = QuarantineStage(self.stage)


def quarantine(lake: Path, src: Path | None, reason: QuarantineReason) -> Path:
    """Copy the rejected file into ``<lake>/quarantine/`` with its reason as JSON beside it."""
    qdir = secure_mkdir(lake_path(lake) / "quarantine")
    # Per user: the same broken file delivered for two people has two reasons, not one.
    user = check_user_id(reason.user_id)
    name = f"{reason.sha256[:12]}-{user}-{Path(reason.file).name.replace('!', '_')}"
    dest = qdir / name
    if isinstance(dest, RemotePath):
        # One PUT is the object store's atomic replace: no temp object, no rename.
        if src is not None and Path(src).exists() and not dest.exists():
            atomic_write_bytes(dest, Path(src).read_bytes())
    elif src is not None and Path(src).exists() and not dest.exists():
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(src, tmp)
            tmp.chmod(FILE_MODE)
            tmp.replace(dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if is_disk_error(exc):
                raise LakeWriteError(dest, exc) from exc
            raise
    atomic_write_bytes(
        dest.with_name(dest.name + ".json"),
        json.dumps(asdict(reason), indent=1, default=str).encode(),
    )
    return dest


def release(lake: Path, sha: str, user_id: str | None = None) -> int:
    """Remove a file's quarantine copy and reason once a retry has ingested it (only that
    user's, when given: the same file may still be quarantined for someone else)."""
    qdir = lake_path(lake) / "quarantine"
    gone = 0
    for p in qdir.glob(f"{sha[:12]}-{check_user_id(user_id) + '-' if user_id else ''}*"):
        p.unlink()
        gone += 1
    return gone


def quarantined(lake: Path) -> list[QuarantineReason]:
    qdir = lake_path(lake) / "quarantine"
    out = []
    for p in sorted(qdir.glob("*.json")):
        # A quarantined .json input's copy also ends in .json: only reason documents count.
        try:
            doc = json.loads(p.read_bytes())
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and {"file", "sha256", "error"} <= doc.keys():
            known = QuarantineReason.__dataclass_fields__
            out.append(QuarantineReason(**{k: v for k, v in doc.items() if k in known}))
    return out


# Gold refresh still owed: the commit records the dates it changed before it marks files as
# ingested, and the refresh clears them only once the gold rows are written, so a crash (or
# `ingest --no-features`) between the two is caught up by the next run instead of lost.


def _pending_path(lake: Path, user_id: str) -> Path:
    return lake_path(lake) / "manifest" / "gold_pending" / f"{check_user_id(user_id)}.json"


def add_pending(lake: Path, changed: dict[str, list[date]]) -> None:
    for user, days in changed.items():
        if not days:
            continue
        have = set(pending(lake).get(user, []))
        out = sorted(have | set(days))
        atomic_write_bytes(
            _pending_path(lake, user), json.dumps([d.isoformat() for d in out]).encode()
        )


def pending(lake: Path) -> dict[str, list[date]]:
    base = lake_path(lake) / "manifest" / "gold_pending"
    return {
        p.stem: [date.fromisoformat(d) for d in json.loads(p.read_text())]
        for p in sorted(base.glob("*.json"))
    }


def clear_pending(lake: Path, user_id: str, done: list[date] | None) -> None:
    """Forget the dates just refreshed (all of them when ``done`` is None)."""
    p = _pending_path(lake, user_id)
    if not p.exists():
        return
    left = [] if done is None else sorted(set(pending(lake).get(user_id, [])) - set(done))
    if left:
        atomic_write_bytes(p, json.dumps([d.isoformat() for d in left]).encode())
    else:
        p.unlink()
