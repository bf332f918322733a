"""Benchmark: tunewell's Apple Health ingest against healthkit-to-sqlite and a bare lxml pass.

Same machine, same run, same file: a heavy user's ``export.zip`` from ``bench/heavy_apple.py``.
Each contender runs in its own subprocess; wall time and that process's peak RSS (``wait4``
rusage) are recorded, medians over ``--repeats`` runs.

- tunewell: ``tunewell ingest export.zip --user heavy`` into a fresh lake (read, validate, write
  silver, build features), the command a user runs.
- healthkit-to-sqlite (dogsheep, from PyPI, in its own venv under ``bench/out/``): what a user
  would pick to get the export into a queryable store.
- bare lxml: ``iterparse`` over the zip member reading every Record's attributes and clearing
  elements: the floor for any reader that parses the XML.

Two more rows split tunewell's cost, same file, same run: ``tunewell --no-features`` (read,
validate, write silver; no gold) and ``tunewell reader`` (the Apple reader's frames alone, in a
process that imports only the reader: no staging, validation or writes).

Before any time is reported, tunewell's heart-rate and step rows are checked against the
records the bare pass counted (an ingest that drops rows would be fast for the wrong reason).
``--quick`` runs a small file once, only that check (CI runs it through a test).

    python bench/apple_bench.py --mb 250 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from heavy_apple import write_heavy_export  # noqa: E402

OUT = HERE / "out"
HK_VENV = OUT / "hk-venv"

BARE_PASS = r"""
import sys, zipfile, json
from lxml import etree
counts = {}
with zipfile.ZipFile(sys.argv[1]) as zf:
    name = next(n for n in zf.namelist() if n.endswith("export.xml"))
    with zf.open(name) as fh:
        for _, el in etree.iterparse(fh, events=("end",), tag=("Record", "Workout"),
                                     load_dtd=False, resolve_entities=False, huge_tree=True):
            attrs = dict(el.attrib)
            key = attrs.get("type") or "Workout"
            counts[key] = counts.get(key, 0) + 1
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]
print(json.dumps(counts))
"""


READER_ONLY = r"""
import sys
from pathlib import Path
from tunewell.ingest.base import FileContext
from tunewell.ingest.formats import apple_health
from tunewell.settings import UserSettings
path = Path(sys.argv[1])
ctx = FileContext(path, path.name, "0" * 64, UserSettings("heavy", tz="Europe/Berlin"), {})
print(sum(df.height for _, df in apple_health.read(ctx)))
"""


@dataclass
class Run:
    seconds: float
    peak_mb: float
    stdout: str
    cpu_s: float = 0.0  # user + system of the contender (its threads and children included)


from launcher import LAUNCHER  # noqa: E402


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall time and the contender's own peak RSS, through ``LAUNCHER``."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, env=env
    )
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    if stats["rc"] != 0:
        raise RuntimeError(f"{cmd[0]} failed ({stats['rc']}): {proc.stderr[-2000:]}")
    return Run(stats["s"], stats["rss_kb"] / 1024, proc.stdout, stats["cpu"])


def tunewell_cmd(zip_path: Path, lake: Path, features: bool = True) -> list[str]:
    exe = Path(sys.executable).parent / "tunewell"
    cmd = [str(exe), "ingest", str(zip_path), "--user", "heavy", "--lake", str(lake),
           "--tz", "Europe/Berlin", "--json"]  # fmt: skip
    return cmd if features else [*cmd, "--no-features"]


def ensure_hk() -> list[str]:
    """The healthkit-to-sqlite command, run by its venv's interpreter (a venv copied from
    another folder keeps script shebangs that point there)."""
    exe = HK_VENV / "bin" / "healthkit-to-sqlite"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(HK_VENV)], check=True)
        subprocess.run(
            [str(HK_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "healthkit-to-sqlite"],
            check=True,
        )
    return [str(HK_VENV / "bin" / "python"), str(exe)]


def tunewell_rows(lake: Path) -> dict[str, int]:
    import polars as pl

    out = {}
    for table in ("heart_rate", "steps", "sleep_stage", "workout"):
        files = list((lake / "silver" / table).rglob("*.parquet"))
        out[table] = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)
    return out


def check_rows(lake: Path, bare_stdout: str) -> dict[str, int]:
    """tunewell's rows per table in ``lake`` equal the records the bare pass counted."""
    bare = json.loads(bare_stdout)
    rows = tunewell_rows(lake)
    expect = {
        "heart_rate": bare.get("HKQuantityTypeIdentifierHeartRate", 0),
        "steps": bare.get("HKQuantityTypeIdentifierStepCount", 0),
        "sleep_stage": bare.get("HKCategoryTypeIdentifierSleepAnalysis", 0),
        "workout": bare.get("Workout", 0),
    }
    if rows != expect:
        raise AssertionError(f"tunewell rows {rows} != records in the file {expect}")
    return rows


def check_equal(zip_path: Path) -> dict[str, int]:
    """tunewell's rows per table equal the records a bare parse counts; returns the counts."""
    bare = measure([sys.executable, "-c", BARE_PASS, str(zip_path)]).stdout
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        measure(tunewell_cmd(zip_path, lake))
        return check_rows(lake, bare)


def xml_mb(zip_path: Path) -> float:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.getinfo("apple_health_export/export.xml").file_size / 1e6


def bench_size(mb: float, repeats: int, skip: tuple[str, ...] = ()) -> dict:
    """One size: every contender per round, interleaved. The first round's bare pass and
    tunewell lake are the equality check, done before any number is returned or printed."""
    zip_path = OUT / f"apple-{int(mb)}" / "export.zip"
    if not zip_path.exists():
        write_heavy_export(zip_path, mb)
    names = ("tunewell", "tunewell --no-features", "tunewell reader", "healthkit-to-sqlite")
    res: dict[str, list[Run]] = {k: [] for k in (*names, "bare lxml") if k not in skip}
    hk = ensure_hk() if "healthkit-to-sqlite" in res else []
    load = [os.getloadavg()[0]]
    rows: dict[str, int] = {}
    for _ in range(repeats):
        res["bare lxml"].append(measure([sys.executable, "-c", BARE_PASS, str(zip_path)]))
        with tempfile.TemporaryDirectory() as tmp:
            res["tunewell"].append(measure(tunewell_cmd(zip_path, Path(tmp) / "lake")))
            rows = rows or check_rows(Path(tmp) / "lake", res["bare lxml"][0].stdout)
            if "tunewell --no-features" in res:
                res["tunewell --no-features"].append(
                    measure(tunewell_cmd(zip_path, Path(tmp) / "lake2", features=False))
                )
            if "tunewell reader" in res:
                res["tunewell reader"].append(
                    measure([sys.executable, "-c", READER_ONLY, str(zip_path)])
                )
            if hk:
                res["healthkit-to-sqlite"].append(
                    measure([*hk, str(zip_path), str(Path(tmp) / "hk.db")])
                )
        load.append(os.getloadavg()[0])
    summary = {
        k: {
            "s": statistics.median(r.seconds for r in v),
            "peak_mb": statistics.median(r.peak_mb for r in v),
            "cpu_s": statistics.median(r.cpu_s for r in v),
            "runs": [(round(r.seconds, 1), round(r.cpu_s, 1), round(r.peak_mb)) for r in v],
        }
        for k, v in res.items()
    }
    return {
        "xml_mb": xml_mb(zip_path),
        "rows": rows,
        "results": summary,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "load_1min_per_round": [round(x, 1) for x in load],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, nargs="+", default=[250, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a 5 MB file, equality check only")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["tunewell --no-features", "tunewell reader", "healthkit-to-sqlite"],
        help="contenders to leave out (a long size on a loaded machine)",
    )
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            z = Path(tmp) / "export.zip"
            write_heavy_export(z, 5)
            print(json.dumps({"quick": True, "rows": check_equal(z)}))
        return
    out = OUT / "apple_bench.json"  # sizes run separately (e.g. fewer repeats) accumulate here
    report = json.loads(out.read_text()) if out.exists() else {}
    for mb in args.mb:
        report[str(int(mb))] = bench_size(mb, args.repeats, tuple(args.skip))
        print(json.dumps({str(int(mb)): report[str(int(mb))]}), flush=True)
        out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
