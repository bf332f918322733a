"""The nightly flow: new inbox files → silver → gold features and scores → quality report.

Each line of the flow is a task calling a plain, tested function; Prefect adds retries, logs,
mapping (one task per file) and schedules. With no server configured Prefect starts a temporary
one for the run, so this needs nothing running; with ``PREFECT_API_URL`` set it reports there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from tunewell.features.refresh import RefreshStats
from tunewell.ingest import runner
from tunewell.lake.store import init_lake, run_lock
from tunewell.models.score import refresh as refresh_features_and_scores
from tunewell.pipelines import quality
from tunewell.settings import Settings, load_settings


@task(cache_policy=NO_CACHE)
def discover_files(settings: Settings) -> list[runner.Candidate]:
    return list(runner.discover_inbox(settings.inbox))


@task(cache_policy=NO_CACHE, retries=1)
def stage(cand: runner.Candidate, settings: Settings, options: dict) -> list[runner.StagedFile]:
    return runner.stage_file(
        cand.path,
        settings.user(cand.user_id),
        settings,
        display=runner.private_display(cand, settings),
        options=options,
    )


@task(cache_policy=NO_CACHE)
def write_silver(staged: list[list[runner.StagedFile]], settings: Settings) -> runner.RunReport:
    return runner.commit([s for group in staged for s in group], settings)


@task(cache_policy=NO_CACHE)
def update_gold(report: runner.RunReport, settings: Settings, full: bool) -> RefreshStats:
    """Refresh what the lake says is owed: this run's changes and any a crashed run left.
    Features, then the scores of exactly the rebuilt nights, before the owed dates clear."""
    return refresh_features_and_scores(settings, None, full=full)


@task(cache_policy=NO_CACHE)
def quality_report(
    report: runner.RunReport, settings: Settings
) -> tuple[quality.QualityReport, Path]:
    rep = quality.build_report(report, settings)
    return rep, quality.write_report(rep, settings.lake)


@flow(name="tunewell-nightly", log_prints=True)
def nightly(
    config: str | None = None,
    lake: str | None = None,
    inbox: str | None = None,
    full: bool = False,
    options: dict | None = None,
) -> quality.QualityReport:
    """Ingest what is new in the inbox and bring features up to date."""
    settings = load_settings(config, lake)
    if inbox:
        settings = replace(settings, inbox=Path(inbox))
    init_lake(settings.lake)
    with run_lock(settings.lake):  # one run per lake: a second waits or exits naming this one
        files = discover_files(settings)
        staged = stage.map(files, settings=unmapped(settings), options=unmapped(options or {}))
        # Prefect resolves the futures to their lists before the task runs; its stubs don't say so.
        report = write_silver(staged, settings)  # type: ignore[arg-type]
        gold = update_gold(report, settings, full)
        rep, path = quality_report(report, settings)
    rep.gold_refresh, rep.report_path = gold, path
    return rep


if __name__ == "__main__":
    nightly()
