"""The nightly flow: new inbox files → silver → gold features and scores → the touched weeks'
summaries → quality report → run report.

The sequence itself is ``steps.run_nightly``, the same function ``tunewell ingest`` runs in
process; here it runs with ``PrefectSteps``, which makes each step a task calling that step's
plain function. Mapped steps (one task per file, one per user) go to the flow's task runner (a
Dask cluster with ``runners.with_runner``); the other steps, every write among them, run in the
flow's own process, so the lake has one writer however many workers read. With no server
configured Prefect starts a temporary one for the run, so this needs nothing running; with
``PREFECT_API_URL`` set it reports there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from prefect import Task, flow, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tunewell.ingest import runner
from tunewell.lake.paths import lake_path
from tunewell.lake.store import LakeLockedError
from tunewell.pipelines import quality, steps
from tunewell.pipelines.run_report import QUALITY_ARTIFACT_KEY, RUN_ARTIFACT_KEY, RunSummary
from tunewell.settings import Settings, load_settings

R = TypeVar("R")

# Transient failures worth another try: the file system (a network mount, an object store) and a
# lake another run is still writing. Everything else (a bad file) is handled inside the step, by
# quarantine, and retrying it would only repeat the same answer.
RETRY_DELAYS_S: list[float] = [5, 30, 120]
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


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def _task(fn: Callable[..., R], retrying: bool = True) -> Task[..., R]:
    """A step as a Prefect task named after it; retried on transient errors unless told not."""
    if not retrying:
        return task(name=fn.__name__, cache_policy=NO_CACHE)(fn)
    return task(
        name=fn.__name__,
        cache_policy=NO_CACHE,
        retries=len(RETRY_DELAYS_S),
        retry_delay_seconds=RETRY_DELAYS_S,
        retry_condition_fn=_retry_transient,
    )(fn)


def _publish_run(summary: RunSummary, settings: Settings) -> str:
    """The run report (written to the lake by the plain step) and the quality report as
    Markdown artifacts of this flow run."""
    md = steps.run_report(summary, settings)
    if summary.quality_report:  # read through the lake's path type: it may be in a bucket
        create_markdown_artifact(
            markdown=lake_path(summary.quality_report).read_text(),
            key=QUALITY_ARTIFACT_KEY,
            description="tunewell data-quality report of this run",
        )
    create_markdown_artifact(markdown=md, key=RUN_ARTIFACT_KEY, description="tunewell nightly run")
    return md


known_files = _task(steps.known_files)
stage_known = _task(steps.stage_known)
stage = _task(steps.stage_one)
write_silver = _task(steps.write_silver)
plan_gold = _task(steps.plan_gold, retrying=False)
build_gold = _task(steps.build_gold)
write_gold = _task(steps.write_gold)
plan_summaries = _task(steps.plan_summaries, retrying=False)
summarise = _task(steps.summarise_user)
write_summaries = _task(steps.write_summaries)
clear_owed = _task(steps.clear_owed)
quality_report = _task(steps.quality_report)
publish = _task(_publish_run)


def _discover(settings: Settings) -> list[runner.Candidate]:
    return list(runner.discover_inbox(settings.inbox))


discover_files = _task(_discover, retrying=False)


class PrefectSteps:
    """``steps.Executor`` on Prefect: ``call`` runs the step's task in this process (a direct
    task call is synchronous in Prefect 3), ``map`` submits one task run per item to the flow's
    task runner and waits for all of them."""

    def __init__(self) -> None:
        # Looked up at call time, so a test can swap a task (e.g. shorter retry delays).
        self.tasks: dict[Callable[..., Any], str] = {
            steps.known_files: "known_files",
            steps.stage_known: "stage_known",
            steps.stage_one: "stage",
            steps.write_silver: "write_silver",
            steps.plan_gold: "plan_gold",
            steps.build_gold: "build_gold",
            steps.write_gold: "write_gold",
            steps.plan_summaries: "plan_summaries",
            steps.summarise_user: "summarise",
            steps.write_summaries: "write_summaries",
            steps.clear_owed: "clear_owed",
            steps.quality_report: "quality_report",
            steps.run_report: "publish",
        }

    def _task(self, step: Callable[..., R]) -> Task[..., R]:
        return globals()[self.tasks[step]]

    def call(self, step: Callable[..., R], *args: Any) -> R:
        return self._task(step)(*args)

    def map(self, step: Callable[..., R], items: list[Any], *args: Any) -> list[R]:
        if not items:
            return []
        futures = self._task(step).map(items, *[unmapped(a) for a in args])
        return futures.result()


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
    """Ingest what is new in the inbox and bring gold up to date (``since``/``until``: also
    re-derive that date range, for ``users`` or everyone)."""
    settings = load_settings(config, lake)
    if inbox:
        settings = replace(settings, inbox=Path(inbox))
    request = steps.NightlyRequest(
        full=full,
        since=since,
        until=until,
        users=tuple(settings.lake_id(u) for u in users) if users else None,
        options=options or {},
        runner=runner_name,
    )
    files = discover_files(settings)
    return steps.run_nightly(settings, files, request, PrefectSteps())


if __name__ == "__main__":
    nightly()
