"""Lab results as a simple CSV, read by header: the layout labs' spreadsheets and home kits map to.

Layout (header names are case-insensitive, order is free, extra columns are ignored)::

    date,code,name,value,unit,low,high
    2026-03-02T07:40:00+01:00,2276-4,Ferritin,38,ng/mL,30,400
    2026-03-02,,Saliva cortisol (waking),12.1,nmol/L,,
    2026-03-02,5196-1,HBsAg,negative,,,

- ``date`` (also ``collected``, ``datetime``): ISO date or date-time; an offset (``+01:00``,
  ``Z``) is kept, a date or a clock time without one is local time in the user's zone.
- ``code`` and/or ``name``: at least one per row. A code shaped like a LOINC code (``2276-4``)
  gets ``code_system`` http://loinc.org unless a ``code_system`` column says otherwise.
- ``value``: a number, or text (``negative``, ``<0.5``), which is kept as ``value_text``.
- ``unit`` (UCUM where the lab uses it), ``low`` and ``high`` (the lab's reference range), and
  optionally ``reference`` (the range as text), ``interpretation`` (H/L/N …), ``specimen``,
  ``status``.

A row whose date does not parse, or with neither code nor name, makes the whole file refused
(quarantined with the row named), as for every other reader: a half-read lab sheet would look
complete.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.lab_rows import LOINC, LabRow, TimeFormatError, frame, is_loinc, parse_time

SOURCE = "lab_csv"
PRIORITY = 40

ALIASES = {
    "date": ("date", "collected", "datetime", "date_time", "collected_at"),
    "code": ("code", "loinc"),
    "name": ("name", "test", "marker", "analyte"),
    "value": ("value", "result"),
    "unit": ("unit", "units"),
    "low": ("low", "ref_low", "reference_low", "range_low"),
    "high": ("high", "ref_high", "reference_high", "range_high"),
    "code_system": ("code_system", "system"),
    "reference": ("reference", "reference_text", "range", "reference_range"),
    "interpretation": ("interpretation", "flag"),
    "specimen": ("specimen", "sample"),
    "status": ("status",),
}


def _header(head: bytes) -> tuple[list[str], str]:
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    sep = ";" if line.count(";") > line.count(",") else ","
    return [c.strip().strip('"').strip().lower() for c in line.strip().split(sep)], sep


def columns(cols: list[str]) -> dict[str, int]:
    """Which CSV column holds each field of the layout."""
    out = {}
    for field, names in ALIASES.items():
        for i, c in enumerate(cols):
            if c in names:
                out[field] = i
                break
    return out


def sniff(path: Path, head: bytes) -> bool:
    found = columns(_header(head)[0])
    return (
        {"date", "value"} <= found.keys()
        and bool({"code", "name"} & found.keys())
        and bool({"unit", "low", "high"} & found.keys())
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    raw = ctx.path.read_bytes()
    cols, sep = _header(raw[:4096])
    where = columns(cols)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"{ctx.display}: not UTF-8 text ({exc})") from exc
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    next(reader, None)
    rows: list[LabRow] = []
    doc = Path(ctx.display.rsplit("!", 1)[-1]).name
    for n, rec in enumerate(reader, start=2):
        if not any(x.strip() for x in rec):
            continue

        def get(field: str, rec: list[str] = rec) -> str | None:
            i = where.get(field)
            v = rec[i].strip() if i is not None and i < len(rec) else ""
            return v or None

        code, name = get("code"), get("name")
        if code is None and name is None:
            raise ReadError(f"{ctx.display}: line {n}: neither code nor name")
        when_text = get("date")
        try:
            when = parse_time(when_text or "", ctx)
        except TimeFormatError as exc:
            raise ReadError(f"{ctx.display}: line {n}: {exc}") from exc
        raw_value = get("value")
        value = _number(raw_value) if raw_value else None
        system = get("code_system") or (LOINC if is_loinc(code) else None)
        rows.append(
            LabRow(
                start=when,
                code=code,
                code_system=system if code else None,
                name=name or code,
                value=value,
                unit=get("unit"),
                value_text=raw_value if value is None else None,
                reference_low=_number(get("low") or ""),
                reference_high=_number(get("high") or ""),
                reference_text=get("reference"),
                interpretation=get("interpretation"),
                specimen=(get("specimen") or "").lower() or None,
                collected=when,
                status=get("status"),
                source_document=f"{doc}#line{n}",
            )
        )
    if rows:
        yield "lab_result", frame(ctx, rows, SOURCE)
