"""Shared fixtures: where the real third-party data lives, temporary lakes, settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUNEWELL_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def shared(*parts: str) -> Path:
    """Path inside ../shared/data; skips the calling test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} (needs ../shared/data beside the project)")
    return p


@pytest.fixture
def shared_data() -> Path:
    return shared()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def settings(lake: Path):
    from tunewell.settings import Settings, UserSettings

    return Settings(
        lake=lake,
        inbox=lake.parent / "inbox",
        users={
            "u1": UserSettings("u1", tz="Europe/Berlin"),
            "u2": UserSettings("u2", tz="America/New_York"),
        },
    )
