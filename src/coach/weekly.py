"""The weekly run as plain functions: summarise each person's ISO week, store ``weekly_summary``,
and write the pages to ``<lake>/reports/weekly/<YYYY-Www>/`` (``index.html`` is the roster of
everyone, ``coach-<id>.html`` one per configured coach, ``<user_id>.html`` and ``.md`` per
person). ``pipelines/weekly.py`` runs these as Prefect tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tunewell.coach import report
from tunewell.coach.suggest import RULES_VERSION
from tunewell.coach.summary import PersonWeek, summarise
from tunewell.coach.week import IsoWeek, default_week, load_person
from tunewell.lake import store
from tunewell.lake.frames import empty, record_ids
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
    return IsoWeek.parse(week) if week else default_week(Path(settings.lake))


def people_in(settings: Settings) -> list[str]:
    """Everyone with nightly features in the lake (lake ids)."""
    lake = Path(settings.lake)
    base = store.table_dir(lake, "nightly_features")
    return sorted(p.name.removeprefix("user_id=") for p in base.glob("user_id=*"))


def summarise_person(settings: Settings, user_id: str, week: IsoWeek) -> PersonWeek:
    return summarise(load_person(Path(settings.lake), user_id, week), week)


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
    with store.lake_lock(Path(settings.lake)) as lake:
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
    lake = Path(settings.lake)
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
