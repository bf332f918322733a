"""Benchmark: tunewell's FIT ingest of a Garmin user-year against the bare decoders.

The corpus is one synthetic person-year written with Garmin's official encoder
(``tunewell.synth.garmin_fit``): a sleep and an HRV-status file per night, a monitoring
(wellness) file per day with ``timestamp_16`` heart rate and steps, and an activity file with
beat-to-beat RR per workout. The year ends a year before the default synthetic start, so none of
it lies in the future (an earlier corpus reached past "today" and a third of its files were
quarantined by the "not in the future" check, which measured quarantine, not ingest). Each
contender runs in its own subprocess on the same files; wall time, CPU seconds (user + system of
the process and the workers it waited for) and the child's own peak RSS (``wait4``; with worker
processes it is the largest single process) are recorded, medians over ``--repeats``, with the
load average of the machine beside them.

- tunewell: ``tunewell ingest <folder> --no-features`` (decode, conform, validate, write silver,
  manifest) into a fresh lake, with ``--workers 1`` and ``--workers 2``; and the same with
  features, the command as a user runs it.
- garmin-fit-sdk alone: ``Decoder.read()`` of every file, one process and a ``Pool(2)``.
- fitparse alone: every message of every file parsed.

``--tunewell-path DIR`` puts another checkout's package first on ``PYTHONPATH`` (a folder
holding ``tunewell/``), to time the code before a change on the same files (``--no-workers`` for
code that has no ``--workers``; ``--label`` names the results file).

    python bench/fit_bench.py --days 365 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

SDK_PASS = r"""
import sys, json
from pathlib import Path
from multiprocessing import Pool
from garmin_fit_sdk import Decoder, Stream

def decode(p):
    msgs, errors = Decoder(Stream.from_file(p)).read(convert_datetimes_to_dates=True)
    return sum(len(v) for v in msgs.values())

files = sorted(str(p) for p in Path(sys.argv[1]).glob("*.fit"))
if sys.argv[2] == "1":
    n = sum(map(decode, files))
else:
    with Pool(int(sys.argv[2])) as pool:
        n = sum(pool.map(decode, files, chunksize=8))
print(json.dumps({"files": len(files), "messages": n}))
"""

FITPARSE_PASS = r"""
import sys, json, warnings
from pathlib import Path
import fitparse
warnings.simplefilter("ignore")
n = 0
files = sorted(Path(sys.argv[1]).glob("*.fit"))
for p in files:
    for m in fitparse.FitFile(str(p)).get_messages():
        m.get_values()
        n += 1
print(json.dumps({"files": len(files), "messages": n}))
"""

from launcher import LAUNCHER  # noqa: E402


@dataclass
class Run:
    seconds: float
    cpu: float
    peak_mb: float
    load: float
    stdout: str


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, env=env
    )
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    if stats["rc"] != 0:
        raise RuntimeError(f"{cmd[0]} failed ({stats['rc']}): {proc.stderr[-2000:]}")
    load = (load + os.getloadavg()[0]) / 2
    return Run(stats["s"], stats["cpu"], stats["rss_kb"] / 1024, load, proc.stdout)


def corpus(days: int) -> Path:
    """One person-year of Garmin files, all in the past (cached under bench/out)."""
    from tunewell.synth.people import DEFAULT_START

    start = DEFAULT_START - timedelta(days=days + 1)
    folder = OUT / f"fit-{days}d-from-{start.isoformat()}" / "garmin"
    if not folder.exists() or not any(folder.glob("*.fit")):
        from tunewell.synth.garmin_fit import write_garmin
        from tunewell.synth.people import simulate

        pop = simulate(3, days, seed=7, start=start)
        write_garmin(pop, pop.people[0], folder)
    return folder


def tunewell(folder: Path, lake: Path, features: bool, workers: int = 1) -> list[str]:
    exe = Path(sys.executable).parent / "tunewell"
    cmd = [str(exe), "ingest", str(folder), "--user", "p001", "--lake", str(lake), "--json"]
    cmd += ["--workers", str(workers)] if workers > 1 else []
    return cmd if features else [*cmd, "--no-features"]


def _tables(run: Run) -> dict[str, int]:
    """Rows written per table, from the run's JSON report."""
    text = run.stdout[run.stdout.index("{") :]
    rep = json.loads(text)
    return {t: s["inserted"] + s["updated"] for t, s in rep["tables"].items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tunewell-path", type=Path, default=None)
    ap.add_argument("--label", default="", help="results go to out/fit_bench[_LABEL].json")
    ap.add_argument("--no-workers", action="store_true", help="code without --workers")
    ap.add_argument("--no-features", action="store_true", help="skip ingest + features")
    ap.add_argument("--no-fitparse", action="store_true", help="skip fitparse (no goal row)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    folder = corpus(args.days)
    n_files = len(list(folder.glob("*.fit")))
    env = None
    if args.tunewell_path:
        env = {**os.environ, "PYTHONPATH": str(args.tunewell_path.resolve())}
    tw = {
        "tunewell ingest": (False, 1),
        "tunewell ingest --workers 2": (False, 2),
        "tunewell ingest + features": (True, 1),
    }
    runs: dict[str, list[Run]] = {k: [] for k in (*tw, "sdk 1 process", "sdk Pool(2)", "fitparse")}
    rows: dict[str, dict[str, int]] = {}
    for _ in range(args.repeats):
        for name, (feats, workers) in tw.items():
            if (workers > 1 and args.no_workers) or (feats and args.no_features):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                run = measure(tunewell(folder, Path(tmp) / "lake", feats, workers), env)
                runs[name].append(run)
                rows[name] = _tables(run)
        runs["sdk 1 process"].append(measure([sys.executable, "-c", SDK_PASS, str(folder), "1"]))
        runs["sdk Pool(2)"].append(measure([sys.executable, "-c", SDK_PASS, str(folder), "2"]))
        if not args.no_fitparse:
            runs["fitparse"].append(measure([sys.executable, "-c", FITPARSE_PASS, str(folder)]))
        # Every finished repeat is kept, so a run cut short still leaves its measurements.
        partial = {k: [vars(r) | {"stdout": ""} for r in v] for k, v in runs.items()}
        (OUT / "fit_bench_partial.json").write_text(json.dumps(partial, indent=1))
    # Equal outputs before any time counts: every tunewell variant wrote the same rows.
    counts = list(rows.values())
    if any(c != counts[0] for c in counts):
        raise SystemExit(f"tunewell variants wrote different rows: {rows}")
    med = {
        k: {
            "s": statistics.median(r.seconds for r in v),
            "cpu_s": statistics.median(r.cpu for r in v),
            "peak_mb": statistics.median(r.peak_mb for r in v),
            "load": statistics.median(r.load for r in v),
        }
        for k, v in runs.items()
        if v
    }
    one, sdk = med["tunewell ingest"], med["sdk 1 process"]
    ratios = {
        "ingest / sdk decode (wall)": one["s"] / sdk["s"],
        "ingest / sdk decode (cpu)": one["cpu_s"] / sdk["cpu_s"],
    }
    if "tunewell ingest --workers 2" in med:
        two = med["tunewell ingest --workers 2"]
        ratios["1 worker / 2 workers (wall)"] = one["s"] / two["s"]
    report = {
        "files": n_files,
        "messages": json.loads(runs["sdk 1 process"][0].stdout)["messages"],
        "rows": counts[0],
        "results": med,
        "ratios": ratios,
        "cpus": os.cpu_count(),
        "tunewell_path": str(args.tunewell_path or "this checkout"),
    }
    name = f"fit_bench_{args.label}.json" if args.label else "fit_bench.json"
    (OUT / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
