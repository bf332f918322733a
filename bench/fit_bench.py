"""Benchmark: tunewell's FIT ingest of a Garmin user-year against the bare decoders.

The corpus is one synthetic person-year written with Garmin's official encoder
(``tunewell.synth.garmin_fit``): a sleep and an HRV-status file per night, a monitoring
(wellness) file per day with ``timestamp_16`` heart rate and steps, and an activity file with
beat-to-beat RR per workout. Each contender runs in its own subprocess on the same files; wall
time and the child's own peak RSS (``wait4``) are recorded, medians over ``--repeats``.

- tunewell: ``tunewell ingest <folder> --no-features`` (decode, conform, validate, write silver,
  manifest) into a fresh lake; and the same with features, the command as a user runs it.
- garmin-fit-sdk alone: ``Decoder.read()`` of every file, one process and a ``Pool(2)``.
- fitparse alone: every message of every file parsed.

    python bench/fit_bench.py --days 365 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from apple_bench import measure  # noqa: E402

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


def corpus(days: int) -> Path:
    """One person-year of Garmin files (cached under bench/out)."""
    folder = OUT / f"fit-{days}d" / "garmin"
    if not folder.exists() or not any(folder.glob("*.fit")):
        from tunewell.synth.garmin_fit import write_garmin
        from tunewell.synth.people import simulate

        pop = simulate(3, days, seed=7)
        write_garmin(pop, pop.people[0], folder)
    return folder


def tunewell(folder: Path, lake: Path, features: bool) -> list[str]:
    exe = Path(sys.executable).parent / "tunewell"
    cmd = [str(exe), "ingest", str(folder), "--user", "p001", "--lake", str(lake), "--json"]
    return cmd if features else [*cmd, "--no-features"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    folder = corpus(args.days)
    n_files = len(list(folder.glob("*.fit")))
    names = ("tunewell ingest", "tunewell ingest + features", "sdk 1 process", "sdk Pool(2)")
    runs: dict[str, list] = {k: [] for k in (*names, "fitparse")}
    for _ in range(args.repeats):
        for feats, name in ((False, "tunewell ingest"), (True, "tunewell ingest + features")):
            with tempfile.TemporaryDirectory() as tmp:
                runs[name].append(measure(tunewell(folder, Path(tmp) / "lake", feats)))
        runs["sdk 1 process"].append(measure([sys.executable, "-c", SDK_PASS, str(folder), "1"]))
        runs["sdk Pool(2)"].append(measure([sys.executable, "-c", SDK_PASS, str(folder), "2"]))
        runs["fitparse"].append(measure([sys.executable, "-c", FITPARSE_PASS, str(folder)]))
    report = {
        "files": n_files,
        "messages": json.loads(runs["sdk 1 process"][0].stdout)["messages"],
        "results": {
            k: {
                "s": statistics.median(r.seconds for r in v),
                "peak_mb": statistics.median(r.peak_mb for r in v),
            }
            for k, v in runs.items()
        },
    }
    (OUT / "fit_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
