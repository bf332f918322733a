"""The weekly flow: per person and ISO week → summary, suggestions and pages; a roster per coach.

Thin like the nightly flow: each line is a task calling a plain function of
``tunewell.coach.weekly`` (tested without Prefect). Pages land in
``<lake>/reports/weekly/<YYYY-Www>/``.
"""

from __future__ import annotations

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from tunewell.coach import weekly as coach
from tunewell.coach.summary import PersonWeek
from tunewell.coach.week import IsoWeek
from tunewell.lake.store import init_lake, run_lock
from tunewell.settings import Settings, load_settings


@task(cache_policy=NO_CACHE)
def pick_week(settings: Settings, week: str | None) -> IsoWeek:
    return coach.resolve_week(settings, week)


@task(cache_policy=NO_CACHE)
def find_people(settings: Settings) -> list[str]:
    return coach.people_in(settings)


@task(cache_policy=NO_CACHE)
def summarise(user_id: str, settings: Settings, week: IsoWeek) -> PersonWeek:
    return coach.summarise_person(settings, user_id, week)


@task(cache_policy=NO_CACHE)
def store_summaries(settings: Settings, people: list[PersonWeek]) -> int:
    return coach.store_summaries(settings, people)


@task(cache_policy=NO_CACHE)
def write_pages(settings: Settings, week: IsoWeek, people: list[PersonWeek]) -> coach.WeeklyPages:
    return coach.write_pages(settings, week, people)


@flow(name="tunewell-weekly", log_prints=True)
def weekly(config: str | None = None, lake: str | None = None, week: str | None = None) -> dict:
    """Summarise the week for everyone in the lake and write the coach's pages."""
    settings = load_settings(config, lake)
    init_lake(settings.lake)
    with run_lock(settings.lake):  # not while a nightly run is changing what it summarises
        wk = pick_week(settings, week)
        users = find_people(settings)
        # One task per person: the flow's task runner (threads, or Dask) spreads them.
        people = summarise.map(users, settings=unmapped(settings), week=unmapped(wk)).result()
        rows = store_summaries(settings, people)
        pages = write_pages(settings, wk, people)
    return {
        "week": pages.week,
        "folder": str(pages.folder),
        "roster": str(pages.roster),
        "coach_rosters": {k: str(v) for k, v in pages.coach_rosters.items()},
        "people": {k: str(v) for k, v in pages.people.items()},
        "rows": rows,
    }


if __name__ == "__main__":
    weekly()
