"""The nightly path as plain functions, written once: ingest → gold (features + scores per user)
→ weekly summaries of the weeks that moved → quality report → run report.

``tunewell ingest``, the crash harness and the tests run ``run_nightly`` in this process
(``InProcess``); the nightly flow runs the very same function with an executor that turns each
step into a Prefect task (``pipelines/nightly.py``), so the CLI and the flow cannot drift apart.
An executor has two verbs: ``call`` (one step, in the caller's process: every write, so the lake
keeps one writer) and ``map`` (one step per item: per file, per user, which Prefect hands to its
task runner, e.g. a Dask cluster). No Prefect import here: everything is tested without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar

from tunewell.coach import weekly as coach
from tunewell.coach.summary import PersonWeek
from tunewell.coach.week import IsoWeek
from tunewell.features import refresh
from tunewell.features.refresh import RefreshStats, UserGold, UserPlan
from tunewell.ingest import runner
from tunewell.lake import manifest
from tunewell.lake.paths import lake_path
from tunewell.lake.store import UnsafeUserIdError, atomic_write_bytes, init_lake, run_lock
from tunewell.models.score import derive_scores
from tunewell.pipelines import quality
from tunewell.pipelines.run_report import RunSummary, run_markdown
from tunewell.settings import Settings

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def call(self, step: Callable[..., R], *args: Any) -> R: ...

    def map(self, step: Callable[..., R], items: list[Any], *args: Any) -> list[R]: ...


@dataclass
class InProcess:
    """Every step in this process, one after another; ``on_item(step, item)`` after each mapped
    item (the CLI's progress bar)."""

    on_item: Callable[[Callable[..., Any], Any], None] | None = None
    # Processes that read new files (``tunewell ingest --workers``): decoding is CPU-bound Python
    # that threads cannot share. Only ``stage_one`` goes to them (small results: staging paths);
    # the writes stay here, one writer.
    workers: int = 1

    def call(self, step: Callable[..., R], *args: Any) -> R:
        return step(*args)

    def map(self, step: Callable[..., R], items: list[Any], *args: Any) -> list[R]:
        out = []
        results: Iterable[Any]
        if step is stage_one:  # = stage_one per file, in groups: FIT files conformed together
            settings, options, retry = args
            results = runner.stage_candidates(items, settings, options, retry, self.workers)
        else:
            results = (step(item, *args) for item in items)
        for item, result in zip(items, results, strict=True):
            out.append(result)
            if self.on_item is not None:
                self.on_item(step, item)
        return out


@dataclass(frozen=True)
class NightlyRequest:
    """What a run is asked to do besides ingesting what is new."""

    full: bool = False  # recompute every gold row
    since: date | None = None  # backfill: re-derive since..until (until: the last date)
    until: date | None = None
    users: tuple[str, ...] | None = None  # backfill only these (lake ids)
    options: dict = field(default_factory=dict)  # reader options (start_date, fitabase_id)
    retry_quarantined: bool = False
    gold: bool = True  # False: ingest only, gold stays owed (`tunewell ingest --no-features`)
    runner: str = "default"  # named in the run report


@dataclass(frozen=True)
class SummaryJob:
    user: str
    weeks: tuple[IsoWeek, ...]


# ----------------------------------------------------------------------------- the steps
def stage_one(
    cand: runner.Candidate, settings: Settings, options: dict, retry_quarantined: bool
) -> list[runner.StagedFile]:
    """Read one file into staging (a worker may do this: it writes only its own staging)."""
    return runner.stage_file(
        cand.path,
        settings.user(cand.user_id),
        settings,
        display=runner.private_display(cand, settings),
        options=options,
        retry_quarantined=retry_quarantined,
    )


def known_files(cands: list[runner.Candidate], settings: Settings) -> list[bool]:
    """Per candidate: is its content already in the manifest for that person? Those are answered
    in this process (``stage_file`` only looks them up, and applies its own rule for quarantined
    files), so a nightly over a full inbox makes a task only for each new file."""
    lake = lake_path(settings.lake)
    out = []
    for c in cands:
        try:
            sha = manifest.sha256_file(c.path)
            out.append(manifest.lookup(lake, sha, settings.user(c.user_id).user_id) is not None)
        except (OSError, UnsafeUserIdError):  # stage_file reports these in its own words
            out.append(False)
    return out


def stage_known(
    cands: list[runner.Candidate], settings: Settings, options: dict, retry_quarantined: bool
) -> list[list[runner.StagedFile]]:
    return [stage_one(c, settings, options, retry_quarantined) for c in cands]


def write_silver(staged: list[list[runner.StagedFile]], settings: Settings) -> runner.RunReport:
    # A replay after a failure is harmless: upserts are idempotent and the manifest is written
    # last, so files whose commit did not finish are simply committed again.
    return runner.commit([s for group in staged for s in group], settings)


def plan_gold(settings: Settings, request: NightlyRequest) -> list[UserPlan]:
    """What the lake says is owed (this run's changes and any a crashed run left), plus the
    backfill range when one was asked for."""
    plans = refresh.plan_refresh(settings, None, full=request.full)
    if request.since is None or request.full:
        return plans
    changed = {p.user: list(p.dates) for p in plans}
    users = list(request.users) if request.users else None
    for user, days in refresh.backfill_dates(settings, request.since, request.until, users).items():
        changed[user] = sorted(set(changed.get(user, [])) | set(days))
    return refresh.plan_refresh(settings, changed)


def build_gold(plan: UserPlan, settings: Settings) -> UserGold:
    """One user's features, then the scores of exactly those nights (reads, writes nothing)."""
    return refresh.build_user(settings, plan, derive_scores(settings))


def write_gold(golds: list[UserGold], settings: Settings) -> RefreshStats:
    """Write every user's gold rows; the owed dates stay owed until the summaries are written
    too (``clear_owed``), so a crash in between redoes both."""
    stats = RefreshStats()
    for g in golds:
        refresh.write_user(settings, g, stats, clear=False)
    return stats


def plan_summaries(settings: Settings, plans: list[UserPlan]) -> list[SummaryJob]:
    jobs = []
    for p in plans:
        start, end = p.window
        weeks = coach.weeks_to_refresh(settings, p.user, start, end)
        if weeks:
            jobs.append(SummaryJob(p.user, tuple(weeks)))
    return jobs


def summarise_user(job: SummaryJob, settings: Settings) -> list[PersonWeek]:
    return [coach.summarise_person(settings, job.user, w) for w in job.weeks]


def write_summaries(people: list[list[PersonWeek]], settings: Settings) -> int:
    return coach.store_summaries(settings, [p for group in people for p in group])


def clear_owed(settings: Settings, plans: list[UserPlan]) -> None:
    refresh.clear_owed(settings, plans)


def quality_report(
    report: runner.RunReport, gold: RefreshStats | None, settings: Settings
) -> quality.QualityReport:
    rep = quality.build_report(report, settings)
    rep.gold_refresh = gold
    rep.report_path = quality.write_report(rep, settings.lake)
    return rep


RUN_REPORT = "run-latest.md"


def run_report(summary: RunSummary, settings: Settings) -> str:
    """The run report's Markdown, also kept in ``<lake>/reports/run-latest.md`` (the flow
    publishes it as a Prefect artifact too)."""
    md = run_markdown(summary)
    atomic_write_bytes(lake_path(settings.lake) / "reports" / RUN_REPORT, md.encode())
    return md


# ----------------------------------------------------------------------------- the path
def run_nightly(
    settings: Settings,
    candidates: Iterable[runner.Candidate],
    request: NightlyRequest | None = None,
    ex: Executor | None = None,
) -> quality.QualityReport:
    """Ingest ``candidates``, bring gold and the touched weeks' summaries up to date, and write
    the quality and run reports. One run per lake for all of it (``run_lock``)."""
    request = request or NightlyRequest()
    ex = ex or InProcess()
    t0 = time.perf_counter()
    init_lake(settings.lake)
    with run_lock(settings.lake):  # a second run waits or exits naming this one
        cands = list(candidates)
        known = ex.call(known_files, cands, settings)
        opts = (settings, request.options, request.retry_quarantined)
        seen = iter(
            ex.call(stage_known, [c for c, k in zip(cands, known, strict=True) if k], *opts)
        )
        new = iter(
            ex.map(stage_one, [c for c, k in zip(cands, known, strict=True) if not k], *opts)
        )
        staged = [next(seen) if k else next(new) for k in known]  # in inbox order, as before
        report = ex.call(write_silver, staged, settings)
        gold: RefreshStats | None = None
        if request.gold:
            plans = ex.call(plan_gold, settings, request)
            golds = ex.map(build_gold, plans, settings)
            gold = ex.call(write_gold, golds, settings)
            jobs = ex.call(plan_summaries, settings, plans)
            people = ex.map(summarise_user, jobs, settings)
            ex.call(write_summaries, people, settings)
            ex.call(clear_owed, settings, plans)
        rep = ex.call(quality_report, report, gold, settings)
        backfill = (str(request.since), str(request.until or "last")) if request.since else None
        summary = RunSummary.from_report(
            rep, time.perf_counter() - t0, runner=request.runner, backfill=backfill
        )
        rep.run_markdown = ex.call(run_report, summary, settings)
    return rep
