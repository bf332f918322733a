"""Nightly flow run times on the demo population (`tunewell demo` inputs: 3 people × 35 days).

For each configuration: a first run on an empty lake with every file but the last day's, then an
incremental run with that one new day. Configurations: the default runner, the sequential runner
and a 2-worker Dask LocalCluster on a local lake, and the default runner on a lake in moto's S3
server on loopback. One temporary Prefect API serves every run (its start-up is not counted).
Each run reports wall seconds, CPU seconds of this process and every descendant (API server,
Dask workers), and the 1-minute load average (mean of start and end): on a shared machine wall
time mostly measures the neighbours.

    .venv/bin/python bench/flow_bench.py [--users 3] [--days 35] [--only default,dask,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _created(path: Path):
    from garmin_fit_sdk import Decoder, Stream

    msgs, _ = Decoder(Stream.from_file(str(path))).read()
    try:
        return msgs["file_id_mesgs"][0]["time_created"].date()
    except (KeyError, IndexError):
        return None


def _tree_cpu() -> float:
    """CPU seconds (user + system) of this process, its reaped children, and every descendant
    still alive (the Prefect API server, Dask workers): what the run cost, whoever ran it."""
    import resource

    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    stat: dict[int, list[str]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(d.name)], stat[int(d.name)] = int(fields[1]), fields
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, pp in parent.items():
            if pp in mine and pid not in mine:
                mine.add(pid)
                changed = True
    for pid in mine - {os.getpid()}:
        f = stat[pid]
        total += (int(f[11]) + int(f[12])) / tick  # utime, stime of the live descendant
    return total


def _copy(files: list[Path], src: Path, dst: Path) -> None:
    for f in files:
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--only", default="default,sequential,dask,s3")
    args = ap.parse_args()

    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tunewell.pipelines.nightly import nightly
    from tunewell.pipelines.runners import with_runner
    from tunewell.settings import Settings, settings_toml
    from tunewell.synth.generate import write_inbox
    from tunewell.synth.people import DEFAULT_START, simulate

    root = Path(tempfile.mkdtemp(prefix="tunewell-flowbench-"))
    users = write_inbox(simulate(args.users, args.days, 7), root / "all")
    last = DEFAULT_START + timedelta(days=args.days - 1)
    files = sorted(p for p in (root / "all").rglob("*") if p.is_file())
    new_day = [f for f in files if f.suffix == ".fit" and _created(f) == last]
    print(f"{len(files)} files; the new day ({last}) brings {len(new_day)}")

    server = SubprocessASGIServer()
    server.start(timeout=180)
    os.environ["PREFECT_API_URL"] = server.api_url  # Dask workers find it here
    moto = None
    rows = []
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            for conf in args.only.split(","):
                inbox = root / f"inbox-{conf}"
                _copy([f for f in files if f not in new_day], root / "all", inbox)
                lake: str = str(root / f"lake-{conf}")
                runner = "default" if conf == "s3" else conf
                if conf == "s3":
                    import s3fs
                    from moto.server import ThreadedMotoServer

                    with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        port = s.getsockname()[1]
                    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
                    moto.start()
                    os.environ.update(
                        AWS_ACCESS_KEY_ID="bench",
                        AWS_SECRET_ACCESS_KEY="bench",
                        AWS_DEFAULT_REGION="us-east-1",
                        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                    )
                    s3fs.S3FileSystem.clear_instance_cache()
                    s3fs.S3FileSystem().mkdir("bench")
                    lake = "s3://bench/lake"
                cfg = root / f"{conf}.toml"
                cfg.write_text(settings_toml(Settings(lake=root / "x", inbox=inbox, users=users)))
                flow = with_runner(nightly, runner)
                times = []
                for step in ("first", "incremental"):
                    if step == "incremental":
                        _copy(new_day, root / "all", inbox)
                    load0, c0, t0 = os.getloadavg()[0], _tree_cpu(), time.perf_counter()
                    rep = flow(
                        config=str(cfg), lake=lake, inbox=str(inbox), runner_name=runner
                    ).to_dict()
                    wall, cpu = time.perf_counter() - t0, _tree_cpu() - c0
                    load = (load0 + os.getloadavg()[0]) / 2
                    times.append(f"{wall:.1f} s / {cpu:.1f} s (load {load:.1f})")
                    print(
                        f"{conf:10s} {step:11s} {times[-1]}  ingested {rep['ingested']}"
                        f" of {rep['files_seen']}, gold users {len(rep['gold_refresh']['users'])}",
                        flush=True,
                    )
                rows.append((conf, *times))
    finally:
        if moto is not None:
            moto.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        "\n| configuration | first run: wall / CPU (1-min load) "
        "| incremental, one new day: wall / CPU (load) |\n|---|---:|---:|"
    )
    for conf, first, inc in rows:
        print(f"| {conf} | {first} | {inc} |")


if __name__ == "__main__":
    main()
