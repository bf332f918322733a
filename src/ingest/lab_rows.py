"""One typed row shape for every lab reader (FHIR, Apple clinical records, lab CSV, MMASH saliva).

Lab results are few (tens to thousands per person), so readers build ``LabRow`` objects and turn
them into one frame here: the conversion of times, the LOINC system name and the frame schema then
live in one place and a result reads the same whichever format carried it.

Times: a FHIR ``dateTime`` with a time must carry an offset, which is kept (``tz_source`` record);
a date alone (``2024-03-01``), a partial date (``2024-03``) or a clock time without an offset
(lab CSVs, lenient exporters) is the user's local midnight or wall clock in their zone history
(``tz_source`` user_setting), like every other reader that meets local times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

import polars as pl

from tunewell.ingest.base import FileContext
from tunewell.ingest.timeparse import wall_to_utc, zone_on

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_LOINC_CODE = re.compile(r"^\d{1,7}-\d$")
# FHIR dateTime (R4 and DSTU2): YYYY, YYYY-MM, YYYY-MM-DD or a full time with an offset; the
# offset is made optional and seconds too, because lab CSVs and some exporters leave them out.
_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[T ](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?)?$"
)


class TimeFormatError(ValueError):
    """A time that is not a FHIR dateTime (or the lenient forms lab CSVs use)."""


@dataclass(frozen=True)
class Instant:
    utc: datetime
    offset_min: int | None  # None: local time placed in the user's zone


def is_loinc(code: str | None) -> bool:
    return bool(code) and bool(_LOINC_CODE.match(code or ""))


def parse_time(text: str, ctx: FileContext) -> Instant:
    """UTC instant of a FHIR dateTime/instant (or a lab CSV's date), with its own offset if any."""
    m = _DATETIME.match(text.strip())
    if not m:
        raise TimeFormatError(f"not a date/time: {text!r}")
    g = m.groupdict()
    try:
        local = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            round(float(g["f"] or 0) * 1_000_000),
        )
    except ValueError as exc:
        raise TimeFormatError(f"not a date/time: {text!r} ({exc})") from exc
    tz = g["tz"]
    if tz is None:
        return Instant(wall_to_utc(local, zone_on(ctx.user, local.date())), None)
    if tz == "Z":
        off = 0
    else:
        digits = tz[1:].replace(":", "")
        off = (int(digits[:2]) * 60 + int(digits[2:])) * (1 if tz[0] == "+" else -1)
    return Instant((local - timedelta(minutes=off)).replace(tzinfo=UTC), off)


@dataclass
class LabRow:
    """A result as the lab reported it (see ``lake.schemas`` ``lab_result`` for each field)."""

    start: Instant
    end: Instant | None = None
    code: str | None = None
    code_system: str | None = None
    name: str | None = None
    value: float | None = None
    unit: str | None = None
    value_text: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    reference_text: str | None = None
    interpretation: str | None = None
    specimen: str | None = None
    collected: Instant | None = None
    status: str | None = None
    source_document: str | None = None


_PLAIN = [f.name for f in fields(LabRow) if f.name not in ("start", "end", "collected")]
_FLOAT = {"value", "reference_low", "reference_high"}
TS_PL = pl.Datetime("us", "UTC")


def frame(ctx: FileContext, rows: list[LabRow], source: str) -> pl.DataFrame:
    """Rows → ``lab_result`` frame through ``ctx.conform`` (ids, zones, schema)."""
    data: dict[str, list] = {c: [getattr(r, c) for r in rows] for c in _PLAIN}
    data["start_utc"] = [r.start.utc for r in rows]
    data["end_utc"] = [r.end.utc if r.end else None for r in rows]
    data["collected_utc"] = [r.collected.utc if r.collected else None for r in rows]
    data["utc_offset_min"] = [r.start.offset_min for r in rows]
    data["tz_source"] = ["record" if r.start.offset_min is not None else None for r in rows]
    schema: dict[str, pl.DataType] = {
        c: (pl.Float64() if c in _FLOAT else pl.String()) for c in _PLAIN
    }
    schema |= {
        "start_utc": TS_PL,
        "end_utc": TS_PL,
        "collected_utc": TS_PL,
        "utc_offset_min": pl.Int32(),
        "tz_source": pl.String(),
    }
    df = pl.DataFrame(data, schema=schema)
    return ctx.conform(df, "lab_result", source=source)


def local_day_start(day: date, ctx: FileContext) -> Instant:
    return Instant(
        wall_to_utc(datetime(day.year, day.month, day.day), zone_on(ctx.user, day)), None
    )


__all__ = [
    "LOINC",
    "UCUM",
    "Instant",
    "LabRow",
    "TimeFormatError",
    "frame",
    "is_loinc",
    "local_day_start",
    "parse_time",
]
