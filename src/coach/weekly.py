"""The weekly run as plain functions: summarise each person's ISO week, store ``weekly_summary``,
and write the pages to ``<lake>/reports/weekly/<YYYY-Www>/`` (``index.html`` is the roster of
everyone, ``coach-<id>.html`` one per configured coach, ``<user_id>.html`` and ``.md`` per
person). ``pipelines/weekly.py`` runs these as Prefect tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from tunewell.coach import report
from tunewell.coach.suggest import RULES_VERSION
from tunewell.coach.summary import PersonWeek, summarise
from tunewell.coach.week import HISTORY_DAYS, IsoWeek, default_week, load_person
from tunewell.lake import store
from tunewell.lake.frames import empty, record_ids
from tunewell.lake.paths import lake_path
from tunewell.lake.schemas import table
from tunewell.settings import Settings


@dataclass
class WeeklyPages:
    week: str
    folder: Path
    roster: Path
    coach_rosters: dict[str, Path] = field(default_factory=dict)
    people: dict[str, Path] = field(default_factory=dict)
    summaries: int = 0


def resolve_week(settings: Settings, week: str | None) -> IsoWeek:
    return IsoWeek.parse(week) if week else default_week(lake_path(settings.lake))


def people_in(settings: Settings) -> list[str]:
    """Everyone with nightly features in the lake (lake ids)."""
    lake = lake_path(settings.lake)
    base = store.table_dir(lake, "nightly_features")
    return sorted(p.name.removeprefix("user_id=") for p in base.glob("user_id=*"))


def summarise_person(settings: Settings, user_id: str, week: IsoWeek) -> PersonWeek:
    return summarise(load_person(lake_path(settings.lake), user_id, week), week)


def weeks_to_refresh(
    settings: Settings, user_id: str, start: date | None, end: date | None
) -> list[IsoWeek]:
    """The weeks with nights whose summary can change when gold rows in ``start..end`` changed
    (every week with nights when the range is open). A week's summary reads the nights from
    ``HISTORY_DAYS`` before its Sunday up to that Sunday, so a late night moves its own week and
    the weeks whose history holds it, and no week before it."""
    nights = store.scan(lake_path(settings.lake), "nightly_features", [user_id])
    days = nights.select("sleep_date").unique().collect()["sleep_date"].to_list()
    weeks = sorted({IsoWeek.of(d) for d in days}, key=lambda w: w.monday)
    if start is None or end is None:
        return weeks
    history = timedelta(days=HISTORY_DAYS)
    return [w for w in weeks if w.sunday >= start and w.sunday - history <= end]


def summary_rows(people: list[PersonWeek]) -> pl.DataFrame:
    t = table("weekly_summary")
    if not people:
        return empty("weekly_summary")
    rows = []
    for p in people:
        _, md = report.render_person(p)
        rows.append(
            {
                "user_id": p.user_id,
                "week": str(p.week),
                "week_start": p.week.monday,
                "summary_md": md,
                "suggestions": p.suggestions_json,
                "headline": p.headline,
                "attention": p.attention,
                "insights": p.insights_json,
                "nights_with_data": p.nights_with_data,
                "coach_version": RULES_VERSION,
            }
        )
    df = pl.DataFrame(rows).with_columns(pl.lit("").alias("record_id"))
    df = df.with_columns(record_ids(df, t))
    schema = empty("weekly_summary").schema
    return df.select([pl.col(c).cast(schema[c]) for c in t.names])


def store_summaries(settings: Settings, people: list[PersonWeek]) -> int:
    """Upsert one row per person and week: re-running a week replaces its rows."""
    df = summary_rows(people)
    with store.lake_lock(lake_path(settings.lake)) as lake:
        store.upsert(lake, "weekly_summary", df)
    return df.height


def _coaches(settings: Settings) -> dict[str, tuple[str, list[str]]]:
    """coach id → (title, lake ids): people are named as in the config, pages by lake id."""
    return {
        cid: (c.name or f"Coach {cid}", [settings.lake_id(u) for u in c.people])
        for cid, c in settings.coaches.items()
    }


def write_pages(
    settings: Settings,
    week: IsoWeek,
    people: list[PersonWeek],
    lab_slot: report.LabProvider | None = None,
) -> WeeklyPages:
    lake = lake_path(settings.lake)
    lab_slot = lab_slot or report.lab_provider(settings.source_priority)
    folder = store.secure_mkdir(lake / "reports" / "weekly" / str(week))
    res = WeeklyPages(str(week), folder, folder / "index.html", summaries=len(people))
    for p in people:
        lab = lab_slot(lake, p.user_id, week)
        html, md = report.render_person(p, lab=lab)
        _write(folder / f"{p.user_id}.html", html)
        _write(folder / f"{p.user_id}.md", md)
        res.people[p.user_id] = folder / f"{p.user_id}.html"
    coaches = _coaches(settings)
    links = [report.RosterLink(t, f"coach-{cid}.html") for cid, (t, _) in coaches.items()]
    html, md = report.render_roster("Roster: everyone", week, people, links)
    _write(res.roster, html)
    _write(folder / "index.md", md)
    by_id = {p.user_id: p for p in people}
    for cid, (title, ids) in coaches.items():
        mine = [by_id[u] for u in ids if u in by_id]
        html, md = report.render_roster(title, week, mine)
        _write(folder / f"coach-{cid}.html", html)
        _write(folder / f"coach-{cid}.md", md)
        res.coach_rosters[cid] = folder / f"coach-{cid}.html"
    return res


def _write(path: Path, text: str) -> None:
    store.atomic_write_bytes(path, text.encode())


def run_weekly(settings: Settings, week: str | None = None) -> WeeklyPages:
    """Everything the flow does, in one call (tests, notebooks)."""
    wk = resolve_week(settings, week)
    people = [summarise_person(settings, u, wk) for u in people_in(settings)]
    store_summaries(settings, people)
    return write_pages(settings, wk, people)
