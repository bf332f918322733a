"""The one small interface every reader implements, so adding a vendor is adding one module.

A reader is a module in ``tunewell.ingest.formats`` with:

- ``SOURCE``: the source name written to every row (e.g. ``"garmin_fit"``);
- ``PRIORITY``: int, lower sniffs first (specific formats before generic CSV/JSON ones);
- ``sniff(path, head) -> bool``: decide by content (``head``: the first 64 KiB), not by name;
- ``read(ctx) -> Iterator[tuple[str, pl.DataFrame]]``: yield ``(table, frame)`` batches already
  passed through ``ctx.conform``; stream large files in batches to keep memory bounded.

A reader appends to ``ctx.notes`` what it deliberately skipped, so the run report says so.
A reader raises ``ReadError`` (or lets any exception escape) for a file it cannot read; the runner
quarantines the file with that message and goes on with the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl

from tunewell.lake.frames import conform
from tunewell.settings import UserSettings

HEAD_BYTES = 64 * 1024


def csv_header(head: bytes) -> list[str]:
    """Column names of a CSV file's first line (UTF-8 BOM, quotes and spaces removed).

    Sniffers decide by these names, so every CSV reader must parse them the same way.
    """
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return [c.strip().strip('"') for c in line.decode("utf-8", "replace").split(",")]


class ReadError(Exception):
    """A file that cannot be read; the message names the problem in the user's terms."""


@dataclass(frozen=True)
class FileContext:
    path: Path  # where the bytes are on disk (an extracted zip member lives in a temp folder)
    display: str  # what to call the file in messages, e.g. "export.zip!apple_health_export/…"
    sha256: str
    user: UserSettings
    options: dict = field(default_factory=dict)  # reader options, e.g. {"start_date": date}
    # What a reader chose not to read (e.g. Apple's export_cda.xml), reported with the file.
    notes: list[str] = field(default_factory=list)

    def conform(
        self, df: pl.DataFrame, table: str, *, source: str, device: str | None = None
    ) -> pl.DataFrame:
        return conform(
            df, table, user=self.user, source=source, source_file=self.sha256, device=device
        )


@runtime_checkable
class Reader(Protocol):
    """A reader module (``ingest.formats.<name>``); modules satisfy it structurally."""

    __name__: str
    SOURCE: str
    PRIORITY: int

    def sniff(self, path: Path, head: bytes) -> bool: ...

    def read(self, ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]: ...


@runtime_checkable
class BatchReader(Reader, Protocol):
    """A reader whose files are many and small (FIT): ``read`` split in two, so the runner can
    conform many files' rows per table at once. ``frames(ctx)`` decodes one file into its tables'
    frames, not yet conformed but carrying ``source_file`` and ``device``; ``conform_frames``
    conforms the frames of one or many files of one user and must give the rows ``read`` gives
    file by file. A file whose ``frames`` raises is quarantined alone, as with ``read``."""

    def frames(self, ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]: ...

    def conform_frames(
        self, parts: Iterable[tuple[str, pl.DataFrame]], user: UserSettings
    ) -> Iterator[tuple[str, pl.DataFrame]]: ...
