"""The nightly flow: new inbox files → silver → gold features and scores → quality report.

Each line of the flow is a task calling a plain, tested function; Prefect adds retries, logs,
mapping (one task per file, one per user) and schedules. With no server configured Prefect starts
a temporary one for the run, so this needs nothing running; with ``PREFECT_API_URL`` set it
reports there. Reading files and building each user's gold rows can run on a Dask cluster
(``runners.with_runner``); writing stays one task in the flow's process, so the lake has one
writer however many workers read.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from prefect import flow, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tunewell.features import refresh
from tunewell.features.refresh import RefreshStats, UserGold, UserPlan
from tunewell.ingest import runner
from tunewell.lake.store import LakeLockedError, init_lake, run_lock
from tunewell.models.score import derive_scores
from tunewell.pipelines import quality
from tunewell.pipelines.run_report import (
    QUALITY_ARTIFACT_KEY,
    RUN_ARTIFACT_KEY,
    RunSummary,
    run_markdown,
)
from tunewell.settings import Settings, load_settings

# Transient failures worth another try: the file system (a network mount, an object store) and a
# lake another run is still writing. Everything else (a bad file) is handled inside the step, by
# quarantine, and retrying it would only repeat the same answer.
RETRY_DELAYS_S = [5, 30, 120]
# One timeout for the whole run, on the flow: Prefect cannot interrupt a synchronous task in a
# worker thread (where the thread pool and Dask run them; it only warns), but the flow runs in the
# process's main thread, where it can. Generous: the demo takes a minute, a 2 GB Apple export a
# few; a hung mount or object store should not hold the lake's lock until morning.
FLOW_TIMEOUT_S = 4 * 60 * 60


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: OS-level I/O errors (not a missing file) and a locked lake."""
    if isinstance(exc, LakeLockedError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, OSError) and not isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    )


def _retry_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


_retrying = {
    "retries": len(RETRY_DELAYS_S),
    "retry_delay_seconds": RETRY_DELAYS_S,
    "retry_condition_fn": _retry_transient,
}


@task(cache_policy=NO_CACHE)
def discover_files(settings: Settings) -> list[runner.Candidate]:
    return list(runner.discover_inbox(settings.inbox))


@task(cache_policy=NO_CACHE, **_retrying)
def stage(cand: runner.Candidate, settings: Settings, options: dict) -> list[runner.StagedFile]:
    return runner.stage_file(
        cand.path,
        settings.user(cand.user_id),
        settings,
        display=runner.private_display(cand, settings),
        options=options,
    )


@task(cache_policy=NO_CACHE, **_retrying)
def write_silver(staged: list[list[runner.StagedFile]], settings: Settings) -> runner.RunReport:
    # A replay after a failure is harmless: upserts are idempotent and the manifest is written
    # last, so files whose commit did not finish are simply committed again.
    return runner.commit([s for group in staged for s in group], settings)


@task(cache_policy=NO_CACHE)
def plan_gold(
    report: runner.RunReport,
    settings: Settings,
    full: bool,
    since: date | None,
    until: date | None,
    users: list[str] | None,
) -> list[UserPlan]:
    """What the lake says is owed (this run's changes and any a crashed run left), plus a
    backfill range when one was asked for."""
    plans = refresh.plan_refresh(settings, None, full=full)
    if since is None or full:
        return plans
    changed = {p.user: list(p.dates) for p in plans}
    for user, days in refresh.backfill_dates(settings, since, until, users).items():
        changed[user] = sorted(set(changed.get(user, [])) | set(days))
    return refresh.plan_refresh(settings, changed)


@task(cache_policy=NO_CACHE, **_retrying)
def build_gold(plan: UserPlan, settings: Settings) -> UserGold:
    """Features, then the scores of exactly the rebuilt nights (written together, before the
    owed dates clear)."""
    return refresh.build_user(settings, plan, derive_scores(settings))


@task(cache_policy=NO_CACHE, **_retrying)
def write_gold(golds: list[UserGold], settings: Settings) -> RefreshStats:
    stats = RefreshStats()
    for g in golds:
        refresh.write_user(settings, g, stats)
    return stats


@task(cache_policy=NO_CACHE, **_retrying)
def quality_report(
    report: runner.RunReport, settings: Settings
) -> tuple[quality.QualityReport, Path]:
    rep = quality.build_report(report, settings)
    return rep, quality.write_report(rep, settings.lake)


@task(cache_policy=NO_CACHE)
def publish(summary: RunSummary, quality_md: Path) -> str:
    """The run report and the quality report as artifacts (the latter's file may be an object
    in a bucket, hence read through the lake's own path type)."""
    create_markdown_artifact(
        markdown=quality_md.read_text(),
        key=QUALITY_ARTIFACT_KEY,
        description="tunewell data-quality report of this run",
    )
    md = run_markdown(summary)
    create_markdown_artifact(markdown=md, key=RUN_ARTIFACT_KEY, description="tunewell nightly run")
    return md


@flow(name="tunewell-nightly", log_prints=True, timeout_seconds=FLOW_TIMEOUT_S)
def nightly(
    config: str | None = None,
    lake: str | None = None,
    inbox: str | None = None,
    full: bool = False,
    options: dict | None = None,
    since: date | None = None,
    until: date | None = None,
    users: list[str] | None = None,
    runner_name: str = "default",
) -> quality.QualityReport:
    """Ingest what is new in the inbox and bring features up to date (``since``/``until``:
    also re-derive that date range, for ``users`` or everyone)."""
    t0 = time.perf_counter()
    settings = load_settings(config, lake)
    if inbox:
        settings = replace(settings, inbox=Path(inbox))
    if users:
        users = [settings.lake_id(u) for u in users]
    init_lake(settings.lake)
    with run_lock(settings.lake):  # one run per lake: a second waits or exits naming this one
        files = discover_files(settings)
        staged = stage.map(files, settings=unmapped(settings), options=unmapped(options or {}))
        # Prefect resolves the futures to their lists before the task runs; its stubs don't say so.
        report = write_silver(staged, settings)  # type: ignore[arg-type]
        plans = plan_gold(report, settings, full, since, until, users)
        golds = build_gold.map(plans, settings=unmapped(settings))
        gold = write_gold(golds, settings)  # type: ignore[arg-type]
        rep, path = quality_report(report, settings)
    rep.gold_refresh, rep.report_path = gold, path
    summary = RunSummary.from_run(
        rep.to_dict(),
        gold,
        time.perf_counter() - t0,
        path,
        runner=runner_name,
        backfill=(str(since), str(until or "last")) if since else None,
    )
    rep.run_markdown = publish(summary, path)
    return rep


if __name__ == "__main__":
    nightly()
