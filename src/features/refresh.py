"""Bring the gold tables up to date after an ingest, touching only what the new data can change.

For each user with new rows, the output range is the changed dates plus the days whose rolling
windows include them (``build.recompute_window``), and the inputs are read from the lake back to
the start of the longest window (``build.load_window``). Rows outside that range are left as they
are: the build's windows make the result identical to a full recompute (tested).
The silver rows are first resolved across devices (``lake.merge``), so features see one source
per time slice.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from tunewell.features.build import (
    build_daily_load,
    build_nightly_features,
    load_window,
    recompute_window,
)
from tunewell.lake import manifest, store
from tunewell.lake.crash import crashpoint
from tunewell.lake.merge import resolve_silver
from tunewell.settings import Settings

FEATURE_INPUTS = (
    "sleep_episode",
    "sleep_stage",
    "rr_interval",
    "hrv",
    "heart_rate",
    "vitals",
    "steps",
    "workout",
    "self_report",
)


# A layer above (models) derives more gold tables from the nightly rows just rebuilt; they are
# written under the same lock and before the owed dates are cleared, so a crash between the two
# leaves the dates owed and the next run redoes both (features cannot import models).
Derive = Callable[[str, pl.DataFrame], dict[str, pl.DataFrame]]


@dataclass
class RefreshStats:
    users: list[str] = field(default_factory=list)
    ranges: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


# Per-sample tables are the bulk of a person's silver; neither the merge nor the features read
# their lineage and zone-name strings, so those columns are never decoded from the lake.
SAMPLE_TABLES = ("rr_interval", "heart_rate", "steps")
UNREAD_COLUMNS = ("source_file", "record_id", "device", "tz_name", "tz_source")


def load_silver(
    lake: Path, settings: Settings, user: str, start: date | None
) -> dict[str, pl.LazyFrame]:
    """Resolved silver rows of one user from ``start`` (local date, with a day of slack)."""
    out: dict[str, pl.LazyFrame] = {}
    lo = None
    if start is not None:
        lo = datetime.combine(start - timedelta(days=1), time(), tzinfo=ZoneInfo("UTC"))
    for name in FEATURE_INPUTS:
        lf = store.scan(lake, name, [user])
        if name in SAMPLE_TABLES:
            lf = lf.drop(UNREAD_COLUMNS)
        if lo is not None:
            lf = lf.filter(pl.col("start_utc") >= lo)
        out[name] = lf.collect().lazy()
    resolved, _ = resolve_silver(out, settings.source_priority)
    return resolved


@dataclass(frozen=True)
class _UserGold:
    start: date | None
    end: date | None
    nightly: pl.DataFrame
    load: pl.DataFrame


def refresh_gold(
    settings: Settings,
    changed: dict[str, list[date]] | None = None,
    *,
    full: bool = False,
    derive: Derive | None = None,
    max_workers: int = 1,
) -> RefreshStats:
    """Recompute ``nightly_features`` and ``daily_load`` for changed users and dates.

    ``changed`` maps user -> local dates that received rows; by default it is what the lake
    records as still owed (``manifest.pending``: every commit adds to it), so a run that died
    after writing silver is caught up. ``full`` recomputes everything for every user in the lake.
    Owed dates are cleared once their gold rows are written. ``derive(user, nightly)`` returns
    further gold tables computed from exactly the nightly rows rebuilt (the models' scores).
    ``max_workers`` > 1 builds users in that many processes (each holds one user's silver, so
    memory grows with it); ``derive`` and all writing stay here, one user at a time.
    """
    lake = Path(settings.lake)
    stats = RefreshStats()
    if changed is None and not full:
        changed = manifest.pending(lake)
        if not changed:
            return stats
    users = sorted(changed) if changed else store.users_in(lake)
    crashpoint("before_gold")  # silver and manifest written, gold still owed
    jobs = [(user, [] if full or not changed else changed.get(user, [])) for user in users]
    if max_workers > 1 and len(jobs) > 1:
        # Workers only read and compute; every write stays in this process, in user order, so
        # the lake still has one writer and the result equals the sequential run.
        ctx = multiprocessing.get_context("spawn")  # polars' thread pool does not survive fork
        pool = ProcessPoolExecutor(max_workers=min(max_workers, len(jobs)), mp_context=ctx)
        with pool:
            futures = [pool.submit(_build_user, settings, u, d) for u, d in jobs]
            results = (f.result() for f in futures)
            _write_all(lake, jobs, results, stats, derive)
    else:
        _write_all(lake, jobs, (_build_user(settings, u, d) for u, d in jobs), stats, derive)
    return stats


def _build_user(settings: Settings, user: str, dates: list[date]) -> _UserGold:
    """Both gold tables of one user: over the window ``dates`` can change, or all of it."""
    lake = Path(settings.lake)
    start: date | None
    end: date | None
    if dates:
        start, end = recompute_window(dates)
        silver = load_silver(lake, settings, user, load_window(start, end)[0])
    else:
        start = end = None
        silver = load_silver(lake, settings, user, None)
    us = {user: settings.lake_user(user)}
    nightly = build_nightly_features(silver, us, start, end)
    load = build_daily_load(silver, us, start, end)
    return _UserGold(start, end, nightly, load)


def _write_all(
    lake: Path,
    jobs: list[tuple[str, list[date]]],
    results: Iterator[_UserGold],
    stats: RefreshStats,
    derive: Derive | None,
) -> None:
    for (user, dates), g in zip(jobs, results, strict=True):
        start, end, nightly, load = g.start, g.end, g.nightly, g.load
        extra = derive(user, nightly) if derive is not None else {}
        with store.lake_lock(lake):
            for name, df in (("nightly_features", nightly), ("daily_load", load), *extra.items()):
                crashpoint("feature_write")
                store.upsert(lake, name, df)
                stats.rows[name] = stats.rows.get(name, 0) + df.height
            manifest.clear_pending(lake, user, dates or None)
        stats.users.append(user)
        stats.ranges[user] = (str(start) if start else "all", str(end) if end else "all")
