"""Which engine runs a flow's tasks: Prefect's default thread pool, or a Dask cluster.

Dask is an optional extra (``pip install tunewell[scale]``), so it is imported only when asked
for. A Dask worker is a separate process that reports its task runs to the Prefect API; without
a server each worker would start a temporary one of its own (~38 s, measured in STACK.md), so
``shared_api`` starts one for the whole run and tells the workers where it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from enum import StrEnum
from typing import Any


class Runner(StrEnum):
    default = "default"  # Prefect's thread pool in this process
    sequential = "sequential"  # one task at a time in this process (a baseline, and for debugging)
    dask = "dask"  # a Dask cluster: --dask-address, else a local one


LOCAL_WORKERS = 2


def task_runner(runner: Runner | str, address: str | None = None, workers: int = LOCAL_WORKERS):
    """The Prefect task runner for ``runner`` (None: the flow's own default)."""
    runner = Runner(runner)
    if runner is not Runner.dask and address:
        raise ValueError("--dask-address needs --runner dask")
    if runner is Runner.default:
        return None
    if runner is Runner.sequential:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "--runner dask needs the scale extra: pip install 'tunewell[scale]'"
        ) from exc
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,  # no web server nobody asked for
        },
    )


def with_runner(flow: Any, runner: Runner | str, address: str | None = None) -> Any:
    tr = task_runner(runner, address)
    return flow if tr is None else flow.with_options(task_runner=tr)


@contextlib.contextmanager
def shared_api(runner: Runner | str) -> Iterator[str | None]:
    """For a Dask run without ``PREFECT_API_URL``: one temporary local API for this process and
    every worker it starts (workers inherit the environment), stopped afterwards."""
    if Runner(runner) is not Runner.dask or os.environ.get("PREFECT_API_URL"):
        yield os.environ.get("PREFECT_API_URL")
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # The None-keyed instance is the one Prefect's ephemeral mode would start: starting it here
    # means this process uses it too, instead of a second one.
    server = SubprocessASGIServer()
    server.start(
        timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 120))
    )
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()
