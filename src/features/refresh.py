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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from tunewell.features.build import (
    WORN_TABLES,
    build_daily_load,
    build_nightly_features,
    load_span,
    load_window,
    recompute_window,
)
from tunewell.lake import manifest, store
from tunewell.lake.crash import crashpoint
from tunewell.lake.merge import resolve_silver
from tunewell.lake.paths import lake_path
from tunewell.lake.timezones import local_date
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


# Output days per build of a long range (a first ingest recomputes the whole history): each
# chunk reads only its own days plus the windows' lookback, so the feature step's memory follows
# the chunk, not the history. Chunks give the rows of one build (the incremental guarantee).
CHUNK_DAYS = 183
# Per-sample tables are the bulk of a person's silver; neither the merge nor the features read
# their lineage and zone-name strings, so those columns are never decoded from the lake.
SAMPLE_TABLES = ("rr_interval", "heart_rate", "steps")
UNREAD_COLUMNS = ("source_file", "record_id", "device", "tz_name", "tz_source")


def load_silver(
    lake: Path, settings: Settings, user: str, start: date | None, stop: date | None = None
) -> dict[str, pl.LazyFrame]:
    """Resolved silver rows of one user from ``start`` (local date, with a day of slack) to
    ``stop`` (two days of slack: the night of ``stop`` ends the next morning, in any zone)."""
    # resolved straight from the scans: the raw rows are never held beside
    out = {name: _scan(lake, name, user, start, stop) for name in FEATURE_INPUTS}
    resolved, _ = resolve_silver(out, settings.source_priority)
    return resolved


def _scan(lake: Path, name: str, user: str, start: date | None, stop: date | None) -> pl.LazyFrame:
    utc = ZoneInfo("UTC")
    lf = store.scan(lake, name, [user])
    if name in SAMPLE_TABLES:
        lf = lf.drop(UNREAD_COLUMNS)
    if start is not None:
        lo = datetime.combine(start - timedelta(days=1), time(), tzinfo=utc)
        lf = lf.filter(pl.col("start_utc") >= lo)
    if stop is not None:
        hi = datetime.combine(stop + timedelta(days=2), time(), tzinfo=utc)
        lf = lf.filter(pl.col("start_utc") < hi)
    return lf


def history_span(lake: Path, settings: Settings, user: str) -> pl.DataFrame:
    """``daily_load``'s calendar from the whole history (the first workout, the last worn day),
    resolved as a whole build resolves it, so rows built from a window or a chunk are the rows
    of one whole build. Only the workouts (few) and the last days of the worn tables are read."""
    last = None
    for name in WORN_TABLES:
        d = store.scan(lake, name, [user]).select(local_date().max()).collect().item()
        last = d if last is None or (d is not None and d > last) else last
    tables = {"workout": _scan(lake, "workout", user, None, None)}
    if last is not None:
        tables |= {n: _scan(lake, n, user, last - timedelta(days=1), None) for n in WORN_TABLES}
    resolved, _ = resolve_silver(tables, settings.source_priority)
    return load_span(resolved).collect()


@dataclass(frozen=True)
class UserPlan:
    """What one user's refresh must recompute: ``dates`` that changed (empty: everything)."""

    user: str
    dates: tuple[date, ...] = ()

    @property
    def window(self) -> tuple[date | None, date | None]:
        return recompute_window(self.dates) if self.dates else (None, None)


@dataclass
class UserGold:
    """One user's recomputed gold rows, built anywhere (a worker process, a Dask worker) and
    written by the one writer, so the per-user work scales out while the lake keeps one writer."""

    plan: UserPlan
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)


def plan_refresh(
    settings: Settings, changed: dict[str, list[date]] | None = None, *, full: bool = False
) -> list[UserPlan]:
    """Per user, the dates to recompute: ``changed``, else what the lake records as owed."""
    lake = lake_path(settings.lake)
    if changed is None and not full:
        changed = manifest.pending(lake)
        if not changed:
            return []
    users = sorted(changed) if changed else store.users_in(lake)
    crashpoint("before_gold")  # silver and manifest written, gold still owed
    return [
        UserPlan(user, () if full or not changed else tuple(sorted(set(changed.get(user, [])))))
        for user in users
    ]


def build_user(settings: Settings, plan: UserPlan, derive: Derive | None = None) -> UserGold:
    """Both feature tables of one user over the window its dates can change (or all of it),
    reading the lake and writing nothing; ``derive(user, nightly)`` adds the tables computed
    from exactly those nightly rows (the models' scores)."""
    lake = lake_path(settings.lake)
    start, end = plan.window
    us = {plan.user: settings.lake_user(plan.user)}
    if not (start and end):
        silver = load_silver(lake, settings, plan.user, None)
        nightly = build_nightly_features(silver, us, None, None)
        load = build_daily_load(silver, us, None, None)
    else:
        nightly_parts, load_parts = [], []
        span = history_span(lake, settings, plan.user)
        lo = start
        while lo <= end:
            hi = min(lo + timedelta(days=CHUNK_DAYS - 1), end)
            silver = load_silver(lake, settings, plan.user, load_window(lo, hi)[0], hi)
            nightly_parts.append(build_nightly_features(silver, us, lo, hi))
            load_parts.append(build_daily_load(silver, us, lo, hi, span))
            del silver
            lo = hi + timedelta(days=1)
        nightly = pl.concat(nightly_parts, how="vertical_relaxed")
        load = pl.concat(load_parts, how="vertical_relaxed")
    tables = {"nightly_features": nightly, "daily_load": load}
    if derive is not None:
        tables |= derive(plan.user, nightly)
    return UserGold(plan, tables)


def write_user(
    settings: Settings, gold: UserGold, stats: RefreshStats, *, clear: bool = True
) -> None:
    """Upsert one user's gold rows under the lake lock, then forget the dates they covered
    (a crash in between leaves them owed, and the next run redoes all of them). ``clear=False``
    leaves them owed for a caller that derives more from these rows first (``clear_owed``)."""
    lake = lake_path(settings.lake)
    with store.lake_lock(lake):
        for name, df in gold.tables.items():
            crashpoint("feature_write")
            store.upsert(lake, name, df)
            stats.rows[name] = stats.rows.get(name, 0) + df.height
        if clear:
            manifest.clear_pending(lake, gold.plan.user, list(gold.plan.dates) or None)
    start, end = gold.plan.window
    stats.users.append(gold.plan.user)
    stats.ranges[gold.plan.user] = (str(start) if start else "all", str(end) if end else "all")


def clear_owed(settings: Settings, plans: list[UserPlan]) -> None:
    """Forget the owed dates of ``plans`` once everything derived from them is written."""
    lake = lake_path(settings.lake)
    with store.lake_lock(lake):
        for plan in plans:
            manifest.clear_pending(lake, plan.user, list(plan.dates) or None)


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
    stats = RefreshStats()
    plans = plan_refresh(settings, changed, full=full)
    if max_workers > 1 and len(plans) > 1:
        # Workers only read and compute; every write stays in this process, in user order, so
        # the lake still has one writer and the result equals the sequential run.
        ctx = multiprocessing.get_context("spawn")  # polars' thread pool does not survive fork
        pool = ProcessPoolExecutor(max_workers=min(max_workers, len(plans)), mp_context=ctx)
        with pool:
            futures = [pool.submit(build_user, settings, p) for p in plans]
            for f in futures:
                gold = f.result()
                if derive is not None:
                    gold.tables |= derive(gold.plan.user, gold.tables["nightly_features"])
                write_user(settings, gold, stats)
    else:
        for plan in plans:
            write_user(settings, build_user(settings, plan, derive), stats)
    return stats


def backfill_dates(
    settings: Settings, since: date, until: date | None = None, users: list[str] | None = None
) -> dict[str, list[date]]:
    """Every date of ``since..until`` (default: the last date in the lake) for the users, as a
    ``changed`` map: a backfill re-derives the range as if all of it had just received data,
    so the rows after it whose rolling windows reach into it are refreshed too."""
    lake = lake_path(settings.lake)
    users = users if users is not None else store.users_in(lake)
    out: dict[str, list[date]] = {}
    for user in users:
        end = until or _last_gold_date(lake, user) or since
        if end >= since:
            out[user] = [since + timedelta(days=i) for i in range((end - since).days + 1)]
    return out


def _last_gold_date(lake: Path, user: str) -> date | None:
    last = None
    for name in ("nightly_features", "daily_load"):
        col = store.table(name).time_column
        d = store.scan(lake, name, [user]).select(pl.col(col).max()).collect().item()
        if d is not None and (last is None or d > last):
            last = d
    return last
