"""The nightly flow end to end on synthetic people, and re-running it changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tunewell.lake import store
from tunewell.lake.manifest import FileStatus
from tunewell.settings import Settings, settings_toml
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("prefect"), pytest.mark.slow]


def lake_fingerprint(lake: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for name in store.table_names():
        df = store.read(lake, name)
        ids = "\n".join(sorted(df["record_id"].to_list()))
        out[name] = (df.height, hashlib.sha256(ids.encode()).hexdigest())
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, prefect_harness):
    from tunewell.pipelines.nightly import nightly

    root = tmp_path_factory.mktemp("demo")
    pop = simulate(2, 21, seed=3)
    users = write_inbox(pop, root / "inbox")
    settings = Settings(lake=root / "lake", inbox=root / "inbox", users=users)
    cfg = root / "tunewell.toml"
    cfg.write_text(settings_toml(settings))
    first = nightly(config=str(cfg), lake=str(root / "lake"), inbox=str(root / "inbox"))
    return root, cfg, first


def test_flow_fills_silver_and_gold(demo_run):
    root, _, rep = demo_run
    lake = root / "lake"
    assert rep.count(FileStatus.QUARANTINED) == 0
    assert rep.count(FileStatus.INGESTED) == len(rep.run.files) > 0
    fp = lake_fingerprint(lake)
    for name in (
        "sleep_episode",
        "sleep_stage",
        "hrv",
        "heart_rate",
        "steps",
        "nightly_features",
        "scores",
    ):
        assert fp[name][0] > 0, name
    md = (lake / "reports" / "quality-latest.md").read_text()
    for section in (
        "## Rows per table",
        "## Validation (Great Expectations suite per table)",
        "## Several devices: merge",
        "## Days covered per user and source",
        "## Gold: nights and what each had",
    ):
        assert section in md, section
    assert "| heart_rate |" in md and "bpm in 25..230" in md
    assert {g.user_id for g in rep.gold} == {"p001", "p002"}
    assert (lake / "DICTIONARY.md").exists()


def test_rerun_changes_nothing(demo_run):
    from tunewell.pipelines.nightly import nightly

    root, cfg, _ = demo_run
    before = lake_fingerprint(root / "lake")
    rep = nightly(config=str(cfg), lake=str(root / "lake"), inbox=str(root / "inbox"))
    assert rep.count(FileStatus.INGESTED) == 0
    assert rep.count(FileStatus.ALREADY_SEEN) == len(rep.run.files)
    assert lake_fingerprint(root / "lake") == before
