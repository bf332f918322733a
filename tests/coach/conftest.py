"""A demo-like lake (the demo's 3 synthetic people × 35 days, read from their vendor files) with
its weekly pages, shared by the slow coach tests."""

from __future__ import annotations

import pytest

from tunewell.coach.weekly import run_weekly
from tunewell.features.refresh import refresh_gold
from tunewell.ingest.runner import ingest_paths
from tunewell.settings import Settings
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate


@pytest.fixture(scope="session")
def demo_pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_like")
    pop = simulate(3, 35, seed=7)  # the demo's defaults
    users = write_inbox(pop, root / "inbox")
    settings = Settings(lake=root / "lake", inbox=root / "inbox", users=users)
    for user in users:
        ingest_paths([root / "inbox" / user], user, settings)
    refresh_gold(settings)
    return settings, run_weekly(settings)
