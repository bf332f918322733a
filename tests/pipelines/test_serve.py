"""`tunewell serve` against a real Prefect server on loopback: scheduled runs of the nightly and
the weekly flow happen and complete by themselves, and both processes shut down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tunewell.lake import store
from tunewell.settings import Settings, settings_toml
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
TUNEWELL = Path(sys.executable).with_name("tunewell")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, api: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Schedule and pick up runs within seconds, not a minute.
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_RUNNER_POLL_FREQUENCY="2",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    if api:
        env["PREFECT_API_URL"] = api
    return env


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    return proc.returncode


def _wait(what: str, until, timeout: float, procs: list[subprocess.Popen]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args[:3]} exited early with {p.returncode}"
        got = until()
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_runs_the_nightly_and_weekly_on_their_schedules(tmp_path):
    users = write_inbox(simulate(1, 7, seed=4), tmp_path / "inbox", formats=("garmin_fit",))
    cfg = tmp_path / "tunewell.toml"
    settings = Settings(
        lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users, schedule_tz="Europe/Berlin"
    )
    cfg.write_text(settings_toml(settings))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "prefect_home"
    log = (tmp_path / "server.log").open("w")
    srv = subprocess.Popen(
        [str(TUNEWELL), "server", "--port", str(port)],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    serve = None
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the Prefect server", healthy, 120, [srv])
        serve_log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen(
            [str(TUNEWELL), "serve", "--config", str(cfg), "--every", "10"],
            env=_env(home, api),
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )

        def completed() -> dict[str, dict]:
            """Completed runs by deployment name, once both deployments have one."""
            body = {
                "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                "limit": 20,
                "offset": 0,
            }
            r = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5)
            out = {}
            for run in r.json() if r.status_code == 200 else []:
                dep = httpx.get(f"{api}/deployments/{run['deployment_id']}", timeout=5).json()
                out[dep["name"]] = run | {"deployment": dep}
            return out if len(out) == 2 else {}

        runs = _wait("a completed run of each scheduled flow", completed, 300, [srv, serve])
        assert sorted(runs) == ["tunewell-nightly", "tunewell-weekly"]
        for run in runs.values():
            assert run["auto_scheduled"] is True  # created by the schedule, not by us
            (sched,) = run["deployment"]["schedules"]
            assert sched["schedule"]["timezone"] == "Europe/Berlin"
        assert store.read(tmp_path / "lake", "nightly_features").height >= 5
        assert (tmp_path / "lake" / "reports" / "quality-latest.md").exists()
    finally:
        rc_serve = _stop(serve) if serve is not None else None
        rc_srv = _stop(srv, signal.SIGINT)
    assert rc_serve is not None and rc_serve in (0, -signal.SIGINT, 130)
    assert rc_srv in (0, -signal.SIGINT, 130)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)


def test_serve_without_a_server_says_what_to_do(tmp_path):
    res = subprocess.run(
        [str(TUNEWELL), "serve", "--lake", str(tmp_path / "lake")],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "tunewell server" in res.stdout and "PREFECT_API_URL" in res.stdout


def test_deployments_use_the_settings_zone(tmp_path):
    from tunewell.pipelines.serve import SCHEDULES, deployments

    s = Settings(lake=tmp_path / "lake", schedule_tz="America/New_York")
    night, week = deployments(s, {"lake": str(s.lake), "inbox": "in"})
    assert [x.name for x in SCHEDULES] == ["tunewell-nightly", "tunewell-weekly"]
    for dep, cron in ((night, "0 3 * * *"), (week, "0 6 * * 1")):  # 03:00; Monday 06:00
        (sched,) = dep.schedules
        assert sched.schedule.cron == cron and sched.schedule.timezone == "America/New_York"
        assert dep.concurrency_limit == 1
    assert night.entrypoint == "tunewell.pipelines.nightly.nightly"
    assert week.entrypoint == "tunewell.pipelines.weekly.weekly"
    assert night.parameters == {"lake": str(s.lake), "inbox": "in"}
    assert week.parameters == {"lake": str(s.lake)}  # the weekly flow takes no inbox
    fast, _ = deployments(s, {}, every=5)
    assert fast.schedules[0].schedule.interval.total_seconds() == 5
