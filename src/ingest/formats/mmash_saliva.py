"""MMASH ``saliva.csv``: salivary cortisol and melatonin before sleep and on waking.

The file gives two samples (``SAMPLES`` = ``before sleep`` / ``wake up``) with ``Cortisol NORM``
and ``Melatonin NORM``: concentrations normalised to the sample's total protein, which the MMASH
description gives as µg cortisol per 100 µg protein and µg melatonin per µg protein (Rossi et al.
2020). No codes or reference ranges are given, so none are invented: ``code`` is null and
``name`` is the study's own column name.

The file has no times. MMASH took the samples at bedtime and on waking of the one recorded night,
and the ``sleep.csv`` beside it gives that night's in-bed and out-of-bed clock times, so the
bedtime sample is placed at the first in-bed time and the waking sample at the last out-of-bed
time; the date comes from ``options["start_date"]`` (the date of day 1, as for ``RR.csv``).
The day labels in ``sleep.csv`` are not trusted (some files label a 22:29 bedtime and the 05:52
wake-up both day 1): a recording starts in the morning of day 1 and ends the next morning, so
an in-bed time from noon on is the evening of day 1 and anything earlier is day 2. Without
``start_date``, or without a ``sleep.csv`` holding a night, the samples cannot be placed and the
file is refused with that reason (MMASH user 11's ``sleep.csv`` is empty).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.formats.beat_csv import _start_date
from tunewell.ingest.lab_rows import Instant, LabRow, frame
from tunewell.ingest.timeparse import wall_to_utc, zone_on

SOURCE = "mmash"
PRIORITY = 30
HEADER = ("SAMPLES", "Cortisol NORM", "Melatonin NORM")
MARKERS = {
    "Cortisol NORM": "ug/100ug{protein}",
    "Melatonin NORM": "ug/ug{protein}",
}
BEDTIME, WAKING = "before sleep", "wake up"


def _header(head: bytes) -> list[str]:
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return [c.strip().strip('"') for c in line.decode("utf-8", "replace").strip().split(",")]


def sniff(path: Path, head: bytes) -> bool:
    return set(HEADER) <= set(_header(head))


def _clock(text: str) -> time:
    return datetime.strptime(text.strip(), "%H:%M").time()


def night_times(sleep_csv: Path, day1: datetime) -> tuple[datetime, datetime] | None:
    """Local (in bed, out of bed) of the recorded night from MMASH ``sleep.csv``."""
    df = pl.read_csv(sleep_csv, infer_schema=False)
    if df.is_empty() or "In Bed Time" not in df.columns or "Out Bed Time" not in df.columns:
        return None
    first_in = _clock(df["In Bed Time"][0])
    last_out = _clock(df["Out Bed Time"][-1])
    day2 = day1 + timedelta(days=1)
    bed = datetime.combine((day1 if first_in.hour >= 12 else day2).date(), first_in)
    wake = datetime.combine(day2.date(), last_out)
    return bed, wake


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    start = _start_date(ctx)
    sleep_csv = ctx.path.parent / "sleep.csv"
    day1 = datetime.combine(start, time())
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
        night = night_times(sleep_csv, day1) if sleep_csv.is_file() else None
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ReadError(f"{ctx.display}: unreadable saliva or sleep file ({exc})") from exc
    if night is None:
        raise ReadError(
            f"{ctx.display}: the samples were taken at bedtime and on waking but the file has "
            "no times, and no sleep.csv with the night lies beside it to place them"
        )
    at = {BEDTIME: night[0], WAKING: night[1]}
    rows: list[LabRow] = []
    doc = f"{ctx.path.parent.name}/{ctx.path.name}"
    for rec in df.iter_rows(named=True):
        label = (rec.get("SAMPLES") or "").strip().lower()
        if label not in at:
            raise ReadError(f"{ctx.display}: unknown sample {rec.get('SAMPLES')!r}")
        local = at[label]
        when = Instant(wall_to_utc(local, zone_on(ctx.user, local.date())), None)
        for col, unit in MARKERS.items():
            raw = rec.get(col)
            value = float(raw) if raw not in (None, "") else None
            if value is None:
                continue
            rows.append(
                LabRow(
                    start=when,
                    name=col,
                    value=value,
                    unit=unit,
                    specimen="saliva",
                    collected=when,
                    status="final",
                    source_document=f"{doc}#{label}",
                )
            )
    if rows:
        yield "lab_result", frame(ctx, rows, SOURCE)
