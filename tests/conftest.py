"""Shared fixtures: where the real third-party data lives, temporary lakes, settings."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUNEWELL_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def bench_module(name: str) -> ModuleType:
    """A script of ``bench/`` as a module: the benches are scripts, not a package, and their
    quick sizes are checked here (equal outputs, never times)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


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
