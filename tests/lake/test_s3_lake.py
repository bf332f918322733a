"""The lake on object storage: a real S3 API server on loopback (moto's server mode) through s3fs.

Same guarantees as on disk: `tunewell ingest` and the nightly path give the same rows as a local
lake (scores and weekly summaries included), DuckDB and polars query it, a re-run changes nothing,
a process killed in the middle of a commit leaves whole objects and the next run repairs the lake,
and one writer at a time (conditional PUT lock).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.pipelines.lakecheck import lake_content, moto_s3
from tunewell.ingest import runner
from tunewell.lake import manifest, store
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.pipelines import steps
from tunewell.settings import Settings, load_settings, settings_toml
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate

pytest.importorskip("moto")
pytest.importorskip("s3fs")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("s3")]
BUCKET = "tunewell-test"


@pytest.fixture(scope="module")
def s3_server():
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3src")
    users = write_inbox(simulate(2, 7, seed=9), root / "inbox", formats=("garmin_fit",))
    return root, users


def _run(settings: Settings) -> runner.RunReport:
    """The nightly path (ingest, features, scores, summaries, reports) without Prefect."""
    return steps.run_nightly(settings, runner.discover_inbox(settings.inbox)).run


@pytest.fixture(scope="module")
def local_lake(people, tmp_path_factory) -> Path:
    root, users = people
    lake = tmp_path_factory.mktemp("s3local") / "lake"
    _run(Settings(lake=lake, inbox=root / "inbox", users=users))
    return lake


def test_lake_url_is_kept_by_the_settings(s3_server, monkeypatch):
    monkeypatch.setenv("TUNEWELL_LAKE", f"s3://{BUCKET}/from-env")
    s = load_settings(None)
    assert isinstance(s.lake, RemotePath) and str(s.lake) == f"s3://{BUCKET}/from-env"
    assert str(load_settings(None, f"s3://{BUCKET}/arg/").lake) == f"s3://{BUCKET}/arg"
    assert isinstance(lake_path("data/lake"), Path)


def test_ingest_nightly_and_query_on_s3_match_local(s3_server, people, local_lake):
    import polars as pl
    from typer.testing import CliRunner

    from tunewell.lake.query import run_query
    from tunewell.pipelines.cli import app

    root, users = people
    url = f"s3://{BUCKET}/lake1"
    s = Settings(lake=lake_path(url), inbox=root / "inbox", users=users)
    cfg = root / "s3.toml"
    cfg.write_text(settings_toml(s))
    # `tunewell ingest` for one person straight into the bucket ...
    res = CliRunner().invoke(
        app, ["ingest", str(root / "inbox" / "p001"), "--user", "p001", "--config", str(cfg)]
    )
    assert res.exit_code == 0, res.output
    assert store.users_in(s.lake) == ["p001"]
    # ... then the nightly path picks up the rest of the inbox.
    first = _run(s)
    assert first.count("already_seen") > 0 and first.count("ingested") > 0
    got = lake_content(s.lake)
    assert got["nightly_features"][0] > 0 and got["scores"][0] == got["nightly_features"][0]
    assert got["weekly_summary"][0] > 0 and got["heart_rate"][0] > 0
    assert got == lake_content(local_lake)
    assert (s.lake / "reports" / "quality-latest.md").read_text().startswith("#")
    assert (s.lake / "reports" / steps.RUN_REPORT).read_text().startswith("# tunewell nightly")
    assert (s.lake / "DICTIONARY.md").read_text().startswith("#")
    assert not (s.lake / ".lock").exists() and not (s.lake / ".run.lock").exists()  # released

    again = _run(s)  # idempotent: every file already seen, nothing rewritten
    assert again.count("ingested") == 0 and again.count("already_seen") == len(again.files)
    assert lake_content(s.lake) == got

    # Query: DuckDB (over Arrow read through fsspec) and polars, same answers as on disk.
    sql = "select user_id, count(*) n, round(avg(tst_min), 6) t from nightly_features group by 1"
    assert (
        run_query(s.lake, f"{sql} order by 1").rows()
        == run_query(local_lake, f"{sql} order by 1").rows()
    )
    lazy = store.scan(s.lake, "scores").group_by("user_id").agg(pl.col("sleep_quality").mean())
    local = store.scan(local_lake, "scores").group_by("user_id").agg(pl.col("sleep_quality").mean())
    assert lazy.collect().sort("user_id").equals(local.collect().sort("user_id"))


def test_crash_mid_commit_on_s3_leaves_whole_objects_and_the_next_run_repairs(
    s3_server, people, local_lake, tmp_path
):
    """SIGKILL inside the silver commit (TUNEWELL_CRASH_AT, a real process), then a re-run."""
    from tests.reliability.harness import run_nightly

    root, users = people
    url = f"s3://{BUCKET}/lake2"
    s = Settings(lake=lake_path(url), inbox=root / "inbox", users=users)
    cfg = tmp_path / "tunewell.toml"
    cfg.write_text(settings_toml(s))
    res = run_nightly(cfg, url, crash_at="silver_partition:4", timeout=300)
    assert res.killed, res.stderr
    # Three partitions were PUT whole before the kill, nothing else: every object reads
    # completely and no file is marked ingested, so nothing claims rows that are not there.
    written = [p for p in (s.lake / "silver").glob("*/user_id=*/year=*/part-0.parquet")]
    assert len(written) == 3
    for name in store.table_names():
        store.read(s.lake, name)
    assert manifest.entries(s.lake) == []
    # The dead writer's locks are still there (it never got to delete them); a lock older than
    # TUNEWELL_LOCK_TTL_S counts as dead, here at once.
    assert (s.lake / ".run.lock").exists()
    busy = pytest.raises(store.LakeLockedError, match="in use by another tunewell run")
    with busy, store.run_lock(s.lake, wait_s=0):
        pass
    again = run_nightly(cfg, url, timeout=300, extra_env={"TUNEWELL_LOCK_TTL_S": "0"})
    assert again.returncode == 0, again.stderr
    assert lake_content(s.lake) == lake_content(local_lake)
    assert not (s.lake / ".run.lock").exists()


def test_one_writer_on_s3(s3_server, monkeypatch):
    lake = lake_path(f"s3://{BUCKET}/locked")
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with store.lake_lock(lake):
            inside.set()
            leave.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(30)
    holder = (lake / ".lock").read_text()
    busy = pytest.raises(store.LakeLockedError, match="being written by another tunewell process")
    with busy, store.lake_lock(lake, wait_s=0):
        pass
    # A waiting writer gets in once the first one leaves.
    threading.Timer(1.0, leave.set).start()
    with store.lake_lock(lake, wait_s=30):
        assert (lake / ".lock").read_text() != holder
    t.join()
    assert not (lake / ".lock").exists()
