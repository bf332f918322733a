"""One Prefect test harness per test session (starting one costs ~20 s)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.logging.configuration import setup_logging
    from prefect.testing.utilities import prefect_test_harness

    # Prefect configures its console handlers on first use, bound to whatever sys.stderr is then.
    # If that first use is inside a CliRunner invocation, they keep writing to its stream after
    # the invocation closed it, and every later Prefect log line fails (a RecursionError in the
    # next CLI test). Configure them here, on the real streams, before any test runs a flow.
    setup_logging()
    with prefect_test_harness(server_startup_timeout=120):
        yield
