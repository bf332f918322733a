"""Schedules: the flows as Prefect deployments, served by one long-running process.

``tunewell serve`` registers each deployment (nightly 03:00, weekly Monday 06:00) with the
Prefect server at ``PREFECT_API_URL`` and runs their scheduled runs as they come due (a
subprocess per run, so one bad night never takes the server down). Times are in
``[schedule] tz`` from the settings, so "03:00" stays 03:00 local across daylight-saving
changes. Adding a flow is one line in ``SCHEDULES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval

from tunewell.pipelines.nightly import nightly
from tunewell.pipelines.weekly import weekly
from tunewell.settings import Settings


@dataclass(frozen=True)
class Scheduled:
    flow: Any  # a prefect Flow
    name: str
    cron: str


SCHEDULES: tuple[Scheduled, ...] = (
    Scheduled(nightly, "tunewell-nightly", "0 3 * * *"),  # after the devices' overnight sync
    Scheduled(weekly, "tunewell-weekly", "0 6 * * 1"),  # Monday 06:00: last week's pages
)


def deployments(
    settings: Settings,
    parameters: dict[str, Any],
    *,
    every: float | None = None,
    schedules: tuple[Scheduled, ...] = SCHEDULES,
) -> list[RunnerDeployment]:
    """One deployment per scheduled flow; ``every`` (seconds) replaces the crons by an interval
    (to watch runs happen while setting up, and for the test)."""
    out = []
    for s in schedules:
        schedule = (
            Interval(timedelta(seconds=every), timezone=settings.schedule_tz)
            if every
            else Cron(s.cron, timezone=settings.schedule_tz)
        )
        out.append(
            s.flow.to_deployment(
                name=s.name,
                schedules=[schedule],
                # Each flow gets the parameters it takes (the weekly flow has no inbox).
                parameters={
                    k: v for k, v in parameters.items() if k in s.flow.parameters.properties
                },
                description=f"tunewell {s.name} ({s.cron} {settings.schedule_tz})",
                tags=["tunewell"],
                # A run still going when the next is due waits for it (one writer per lake, and
                # the staging area is shared), instead of racing it.
                concurrency_limit=1,
                # Loaded by module name, not by a file path relative to where serve was started.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


def serve(settings: Settings, parameters: dict[str, Any], *, every: float | None = None) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM pause the schedules on the way out)."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(settings, parameters, every=every))
