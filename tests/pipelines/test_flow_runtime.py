"""The nightly flow as it runs unattended: on a Dask cluster, with a run report in Prefect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.pipelines.lakecheck import lake_content, moto_s3
from tunewell.settings import Settings, settings_toml
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("prefect"), pytest.mark.slow]


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("flowrt")
    users = write_inbox(simulate(2, 12, seed=8), root / "inbox")
    cfg = root / "tunewell.toml"
    cfg.write_text(settings_toml(Settings(lake=root / "unused", inbox=root / "inbox", users=users)))
    return root, cfg


@pytest.fixture(scope="module")
def default_run(inbox, prefect_harness):
    from tunewell.pipelines.nightly import nightly

    root, cfg = inbox
    rep = nightly(
        config=str(cfg), lake=str(root / "lake-default"), inbox=str(root / "inbox")
    ).to_dict()
    return root / "lake-default", rep


def test_dask_cluster_gives_the_same_lake_and_weekly_pages(
    inbox, default_run, monkeypatch, tmp_path
):
    """The nightly and the weekly flow on a 2-worker distributed.LocalCluster (reached by its
    address, as --dask-address does): per-file staging, per-user gold and summaries run on the
    workers, and the lake and pages equal the default runner's."""
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    from tunewell.pipelines.nightly import nightly
    from tunewell.pipelines.runners import Runner, shared_api, with_runner
    from tunewell.pipelines.weekly import weekly

    root, cfg = inbox
    # Dask workers are other processes: they find the harness's API through the environment.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    lake, first = default_run
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        shared_api(Runner.dask) as url,
    ):  # fmt: skip
        assert url == PREFECT_API_URL.value()  # no second server when one is configured
        assert len(cluster.workers) == 2
        flow = with_runner(nightly, Runner.dask, cluster.scheduler_address)
        assert type(flow.task_runner).__name__ == "DaskTaskRunner"
        rep = flow(
            config=str(cfg),
            lake=str(root / "lake-dask"),
            inbox=str(root / "inbox"),
            runner_name="dask",
        ).to_dict()
        got = lake_content(root / "lake-dask")
        pages = with_runner(weekly, Runner.dask, cluster.scheduler_address)(
            config=str(cfg), lake=str(root / "lake-dask")
        )
    assert rep["ingested"] == first["ingested"] == rep["files_seen"] > 0
    assert sorted(rep["gold_refresh"]["users"]) == ["p001", "p002"]
    assert got["nightly_features"][0] > 0 and got["heart_rate"][0] > 0
    assert got["scores"][0] > 0 and got["weekly_summary"][0] > 0
    assert got == lake_content(lake)
    shutil.copytree(lake, tmp_path / "lake")  # the default lake stays as the others expect it
    default_pages = weekly(config=str(cfg), lake=str(tmp_path / "lake"))
    assert pages["week"] == default_pages["week"] and sorted(pages["people"]) == ["p001", "p002"]
    for user, page in pages["people"].items():
        assert Path(page).read_text() == Path(default_pages["people"][user]).read_text()


def test_run_report_is_a_prefect_artifact(default_run):
    import asyncio

    from prefect.client.orchestration import get_client

    from tunewell.pipelines.run_report import QUALITY_ARTIFACT_KEY, RUN_ARTIFACT_KEY

    lake, rep = default_run

    async def read(key: str) -> list[dict]:
        async with get_client() as client:  # the REST call: this server rejects nulls in it
            body = {"artifacts": {"key": {"any_": [key]}}, "limit": 50, "offset": 0}
            resp = await client.request("POST", "/artifacts/filter", json=body)
            return resp.json()

    runs, quality = asyncio.run(read(RUN_ARTIFACT_KEY)), asyncio.run(read(QUALITY_ARTIFACT_KEY))
    assert runs and quality
    md = next(a["data"] for a in runs if a["data"] == rep["run_markdown"])
    files = f"| {rep['files_seen']} | {rep['ingested']} | {rep['already_seen']} | 0 | "
    assert files in md
    assert "| p001 |" in md and "| p002 |" in md  # users updated
    assert "| heart_rate |" in md
    assert (lake / "reports" / "quality-latest.md").resolve().as_uri() in md
    assert any("## Gold: nights and what each had" in a["data"] for a in quality)


def test_a_locked_lake_is_retried_until_free(inbox, default_run, monkeypatch):
    """Another process holding the lake fails the write step; the flow retries it, not fails."""
    import threading

    from tunewell.ingest import runner
    from tunewell.lake import store
    from tunewell.lake.store import LakeLockedError
    from tunewell.pipelines import nightly as mod

    root, cfg = inbox
    lake = root / "lake-locked"
    held, release = threading.Event(), threading.Event()

    def holder():  # a second open file description: flock treats it as another writer
        with store.lake_lock(lake):
            held.set()
            # held until the flow's first commit meets it (a fixed timeout let a slow, loaded
            # run reach its commit after the holder had already let go: ['ok'], not a retry)
            release.wait(600)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    attempts: list[str] = []
    real_commit = runner.commit

    def commit(staged, settings):
        try:
            out = real_commit(staged, settings)
        except LakeLockedError:
            attempts.append("locked")
            release.set()  # the other writer finishes
            t.join()
            raise
        attempts.append("ok")
        return out

    monkeypatch.setattr(runner, "commit", commit)
    monkeypatch.setattr(
        mod, "write_silver", mod.write_silver.with_options(retry_delay_seconds=[0.2, 0.2, 0.2])
    )
    try:
        rep = mod.nightly(config=str(cfg), lake=str(lake), inbox=str(root / "inbox")).to_dict()
    finally:
        release.set()
        t.join(30)
    assert attempts == ["locked", "ok"]
    assert rep["ingested"] == rep["files_seen"] > 0
    assert lake_content(lake) == lake_content(default_run[0])


def test_what_counts_as_transient():
    from tunewell.lake.store import LakeLockedError
    from tunewell.pipelines.nightly import is_transient

    assert is_transient(LakeLockedError("held"))
    assert is_transient(OSError(5, "Input/output error"))
    assert is_transient(TimeoutError())
    assert not is_transient(FileNotFoundError("gone"))
    assert not is_transient(ValueError("a bug"))


def test_nightly_flow_and_query_on_s3(inbox, default_run):
    """The flow itself with the lake in a bucket (moto's S3 server on loopback)."""
    pytest.importorskip("moto")
    from typer.testing import CliRunner

    from tunewell.lake.paths import lake_path
    from tunewell.pipelines.cli import app
    from tunewell.pipelines.nightly import nightly

    root, cfg = inbox
    with moto_s3("flow-lake"):
        url = "s3://flow-lake/lake"
        rep = nightly(config=str(cfg), lake=url, inbox=str(root / "inbox")).to_dict()
        assert rep["ingested"] == rep["files_seen"] > 0
        assert rep["report_path"] == f"{url}/reports/quality-latest.md"
        assert url in rep["run_markdown"]
        assert lake_content(lake_path(url)) == lake_content(default_run[0])
        sql = "select user_id, count(*) n from nightly_features group by 1 order by 1"
        res = CliRunner().invoke(app, ["query", "--lake", url, "--format", "csv", sql])
        assert res.exit_code == 0, res.output
        want = CliRunner().invoke(
            app, ["query", "--lake", str(default_run[0]), "--format", "csv", sql]
        )
        assert res.output == want.output and "p001" in res.output


def test_backfill_from_the_command_line(inbox, default_run, tmp_path):
    """`tunewell nightly --since --until --user` restores damaged rows of that user's range."""
    from datetime import date

    import polars as pl
    from typer.testing import CliRunner

    from tunewell.lake import store
    from tunewell.pipelines.cli import app

    root, cfg = inbox
    lake = tmp_path / "lake"
    shutil.copytree(default_run[0], lake)
    truth = store.read(lake, "nightly_features")
    days = truth["sleep_date"].unique().sort()
    since, until = days[4], days[6]
    bad = truth.filter(pl.col("sleep_date").is_in([days[2], days[5]]))
    store.upsert(lake, "nightly_features", bad.with_columns(tst_min=pl.lit(-1.0)))
    res = CliRunner().invoke(
        app,
        [
            "nightly",
            "--lake",
            str(lake),
            "--config",
            str(cfg),
            "--inbox",
            str(root / "inbox"),
            "--since",
            str(since),
            "--until",
            str(until),
            "--user",
            "p001",
        ],
    )
    assert res.exit_code == 0, res.output
    got = store.read(lake, "nightly_features")
    damaged = got.filter(pl.col("tst_min") == -1)
    # p001's day in the range is restored; the day before it and p002's stay as damaged.
    assert sorted(zip(damaged["user_id"], damaged["sleep_date"], strict=True)) == sorted(
        [("p001", days[2]), ("p002", days[2]), ("p002", days[5])]
    )
    fixed = got.filter((pl.col("user_id") == "p001") & (pl.col("sleep_date") == days[5]))
    want = truth.filter((pl.col("user_id") == "p001") & (pl.col("sleep_date") == days[5]))
    assert fixed["tst_min"].to_list() == want["tst_min"].to_list()
    assert isinstance(since, date)
    bad_range = CliRunner().invoke(app, ["nightly", "--lake", str(lake), "--until", str(until)])
    assert bad_range.exit_code != 0 and "--since" in bad_range.output
