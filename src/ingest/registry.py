"""Find the reader for a file by its content.

Readers are discovered from ``tunewell.ingest.formats`` so that a new vendor needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from tunewell.ingest import formats
from tunewell.ingest.base import HEAD_BYTES, Reader


class SnifferError(Exception):
    """A reader's sniffer raised: a bug in that reader, reported with the file that showed it."""

    def __init__(self, source: str, error: Exception) -> None:
        super().__init__(f"the {source} reader's sniffer failed: {type(error).__name__}: {error}")
        self.source = source


@cache
def readers() -> tuple[Reader, ...]:
    """Every module of ``tunewell.ingest.formats``, each checked against ``base.Reader``.

    A module there that lacks part of the interface is an error at import, not a reader that
    silently never matches.
    """
    mods = [
        importlib.import_module(f"{formats.__name__}.{m.name}")
        for m in pkgutil.iter_modules(formats.__path__)
        if not m.name.startswith("_")
    ]
    bad = [m.__name__ for m in mods if not isinstance(m, Reader)]
    if bad:
        raise TypeError(f"modules in {formats.__name__} without the Reader interface: {bad}")
    found: list[Reader] = [m for m in mods if isinstance(m, Reader)]
    return tuple(sorted(found, key=lambda r: (r.PRIORITY, r.__name__)))


def read_head(path: Path) -> bytes:
    with Path(path).open("rb") as fh:
        return fh.read(HEAD_BYTES)


def detect(path: Path, head: bytes | None = None) -> Reader | None:
    """The first reader (by ``PRIORITY``) whose sniffer claims the file, or None.

    A sniffer that raises is a bug in that reader: ``SnifferError`` names it and the file, so the
    runner quarantines the file with that reason instead of the reader never matching unseen.
    """
    head = read_head(path) if head is None else head
    for mod in readers():
        try:
            claimed = mod.sniff(path, head)
        except Exception as exc:
            raise SnifferError(mod.SOURCE, exc) from exc
        if claimed:
            return mod
    return None


def guess_format(path: Path, head: bytes) -> str:
    """A best guess for the quarantine reason when no reader claims (or reads) a file."""
    if head[8:12] == b".FIT":
        return "garmin_fit"
    if head.startswith(b"PK"):
        return "zip"
    if head.lstrip()[:5] == b"<?xml":
        return "xml"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    if head.startswith(b"SQLite format 3"):
        return "sqlite"
    return Path(path).suffix.lstrip(".").lower() or "unknown"
