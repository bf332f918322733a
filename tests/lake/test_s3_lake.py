"""The lake on object storage: a real S3 API server on loopback (moto's server mode) through s3fs.

Same guarantees as on disk: ingest and the nightly refresh give the same rows as a local lake, a
re-run changes nothing, a crash in the middle of a commit leaves whole objects and is repaired by
the next run, and one writer at a time (conditional PUT lock).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.pipelines.lakecheck import lake_content, moto_s3
from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import manifest, store
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.settings import Settings, load_settings
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
    users = write_inbox(simulate(2, 8, seed=9), root / "inbox", formats=("garmin_fit",))
    return root, users


def _run(settings: Settings) -> runner.RunReport:
    rep = runner.ingest_candidates(runner.discover_inbox(settings.inbox), settings)
    refresh_gold(settings)
    return rep


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


def test_ingest_refresh_and_query_on_s3_match_local(s3_server, people, local_lake):
    from tunewell.lake.query import run_query

    root, users = people
    s = Settings(lake=lake_path(f"s3://{BUCKET}/lake1"), inbox=root / "inbox", users=users)
    first = _run(s)
    assert first.count("ingested") == first.count("ingested") > 0
    got = lake_content(s.lake)
    assert got["nightly_features"][0] > 0 and got["heart_rate"][0] > 0
    assert got == lake_content(local_lake)
    assert len(manifest.entries(s.lake)) == len(first.files)
    assert (s.lake / "reports").exists() is False  # reports are written by the flow, not here
    assert (s.lake / "DICTIONARY.md").read_text().startswith("#")
    assert not (s.lake / ".lock").exists()  # released

    again = _run(s)  # idempotent: every file already seen, nothing rewritten
    assert again.count("ingested") == 0 and again.count("already_seen") == len(first.files)
    assert lake_content(s.lake) == got

    sql = "select user_id, count(*) n, round(avg(tst_min), 6) t from nightly_features group by 1"
    assert (
        run_query(s.lake, f"{sql} order by 1").rows()
        == run_query(local_lake, f"{sql} order by 1").rows()
    )


def test_crash_mid_commit_leaves_whole_objects_and_the_next_run_repairs(
    s3_server, people, local_lake, monkeypatch
):
    root, users = people
    s = Settings(lake=lake_path(f"s3://{BUCKET}/lake2"), inbox=root / "inbox", users=users)
    real_put, puts = store._put, []

    def dying_put(path, data):
        if "/silver/" in str(path):
            if len(puts) >= 3:
                raise ConnectionError("simulated crash: connection lost mid-commit")
            puts.append(str(path))
        real_put(path, data)

    monkeypatch.setattr(store, "_put", dying_put)
    with pytest.raises(ConnectionError):
        runner.ingest_candidates(runner.discover_inbox(s.inbox), s)
    monkeypatch.setattr(store, "_put", real_put)
    # Three partitions were replaced whole, the rest not at all: every object reads completely.
    assert len(puts) == 3 and all(p.endswith(store.PART_FILE) for p in puts)
    for name in store.table_names("silver"):
        store.read(s.lake, name)
    assert manifest.entries(s.lake) == []  # no file is marked ingested
    # The crashed writer's lock is still there (it never got to release it): the next run waits
    # for it to expire, here at once.
    monkeypatch.setenv("TUNEWELL_LOCK_TTL_S", "0")
    rep = _run(s)
    assert rep.count("ingested") == len(rep.files) > 0
    assert lake_content(s.lake) == lake_content(local_lake)


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
