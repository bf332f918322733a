"""Find the reader for a file by its content.

Readers are discovered from ``tunewell.ingest.formats`` so that a new vendor needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

from tunewell.ingest import formats
from tunewell.ingest.base import HEAD_BYTES


@cache
def readers() -> tuple[ModuleType, ...]:
    mods = [
        importlib.import_module(f"{formats.__name__}.{m.name}")
        for m in pkgutil.iter_modules(formats.__path__)
        if not m.name.startswith("_")
    ]
    mods = [m for m in mods if hasattr(m, "sniff") and hasattr(m, "read")]
    return tuple(sorted(mods, key=lambda m: (getattr(m, "PRIORITY", 50), m.__name__)))


def read_head(path: Path) -> bytes:
    with Path(path).open("rb") as fh:
        return fh.read(HEAD_BYTES)


def detect(path: Path, head: bytes | None = None) -> ModuleType | None:
    head = read_head(path) if head is None else head
    for mod in readers():
        try:
            if mod.sniff(path, head):
                return mod
        except Exception:  # a sniffer must never take the run down
            continue
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
