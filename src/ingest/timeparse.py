"""Local wall-clock times → UTC, for exports that write clock times without an offset.

Fitbit, Fitabase, Google Fit, beat CSVs and old Garmin "system time" files write what the wearer's
clock showed, not an instant. The instant depends on the zone the wearer lived in at that time,
so the user's zone history decides: the period whose ``since`` date is on or before the local
date of the reading. Every reader converts through here so one clock reading gives one instant
whichever format carried it.

Two clock readings have no single answer and are resolved the same way everywhere:

- **spring-forward gap** (e.g. Europe/Berlin 2026-03-29 02:00–03:00 does not exist): the reading
  was taken on a clock not yet moved on, so it is read with the offset *before* the change
  (02:30 → 01:30 UTC, i.e. 03:30 CEST). This is also what Python's ``zoneinfo`` does for
  ``fold=0``, so the scalar and the vectorised paths agree.
- **fall-back fold** (e.g. America/New_York 2026-11-01 01:00–02:00 happens twice): the first
  occurrence (the earlier instant, still on daylight time) is taken. Without an offset in the
  record nothing better is possible; readers whose records carry offsets never come here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.settings import UserSettings


def zone_on(user: UserSettings, local_day: date) -> str:
    """IANA zone the user lived in on a local date (their zone history, home zone before it)."""
    return [p.tz for p in user.zone_periods() if p.since <= local_day][-1]


def wall_to_utc(local: datetime, tz: str) -> datetime:
    """UTC instant of a naive wall-clock time in ``tz`` (gap: offset before; fold: first)."""
    return local.replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(UTC)


def _zone_to_utc(col: pl.Expr, tz: str) -> pl.Expr:
    def attach(e: pl.Expr) -> pl.Expr:
        return e.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")

    # A reading inside the gap is one hour later on the moved clock (gaps are 1 h everywhere but
    # Lord Howe, whose 30 min gap this still steps over, though to a 30 min later instant).
    return pl.coalesce(attach(col), attach(col + pl.duration(hours=1))).dt.convert_time_zone("UTC")


def local_to_utc(col: pl.Expr, user: UserSettings) -> pl.Expr:
    """UTC instant (µs) of a naive local wall-clock column, using the user's zone history."""
    periods = user.zone_periods()
    out = _zone_to_utc(col, periods[0].tz)
    for p in periods[1:]:
        out = pl.when(col.dt.date() >= pl.lit(p.since)).then(_zone_to_utc(col, p.tz)).otherwise(out)
    return out.dt.cast_time_unit("us")


def parse_local(col: pl.Expr) -> pl.Expr:
    """Fitbit and PMData write ``2019-11-02T07:19:30.000``, ``2019-11-02 00:09:30`` or
    ``11/02/19 00:09:30`` for the same kind of field, so accept all of them (a trailing ``Z``
    is dropped: those exports put it on local times too)."""
    s = col.str.replace("T", " ").str.strip_suffix("Z")
    return pl.coalesce(
        s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"),
        s.str.to_datetime("%m/%d/%y %H:%M:%S", strict=False, time_unit="us"),
        s.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us"),
        s.str.to_datetime("%m/%d/%y", strict=False, time_unit="us"),
    )


def require_times(ctx: FileContext, df: pl.DataFrame, col: str) -> None:
    """A time that does not parse means the file is not what its reader thinks: quarantine it
    whole rather than ingest it with rows silently missing."""
    bad = df[col].null_count()
    if bad:
        raise ReadError(f"{ctx.display}: {bad} unparseable times in {col}")


__all__ = ["local_to_utc", "parse_local", "require_times", "wall_to_utc", "zone_on"]
