"""Benchmark: tunewell.features (polars) against the pandas reference on synthetic people.

Usage (from the project root)::

    .venv/bin/python bench/features_bench.py --people 100 --days 365 --rr-minutes 30

Data: ``tunewell.synth.people.simulate`` turned into silver frames (sleep stages and episodes,
minute steps and HR, workouts) plus RR beats for the first ``--rr-minutes`` of every night, written
to Parquet once. Each implementation then runs in its own subprocess so its peak RSS
(``ru_maxrss``) is its own; wall time covers reading the Parquet and computing. The outputs are
compared column by column before any timing is reported, and a mismatch aborts the run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLES = ("sleep_episode", "sleep_stage", "rr_interval", "steps", "heart_rate", "workout")
COMPARE = (
    "tib_min",
    "tst_min",
    "sol_min",
    "waso_min",
    "awakenings",
    "efficiency_pct",
    "ln_rmssd",
    "ln_rmssd_b7",
    "ln_rmssd_mu60",
    "ln_rmssd_sd60",
    "rar_is",
    "rar_iv",
)


def generate(people: int, days: int, rr_minutes: int, out: Path) -> dict:
    from tests.features.test_build import silver_from_population, users_of
    from tunewell.synth.people import simulate

    pop = simulate(n_users=people, days=days, seed=7)
    users = users_of(pop)
    silver = silver_from_population(pop, users, rr_minutes=rr_minutes)
    rows = {}
    for name in TABLES:
        df = silver[name].collect()
        df.write_parquet(out / f"{name}.parquet")
        rows[name] = df.height
    (out / "users.json").write_text(
        json.dumps(
            {
                u: {
                    "tz": s.tz,
                    "sex": s.sex,
                    "hr_max": s.hr_max,
                    "tz_history": [[str(p.since), p.tz] for p in s.tz_history],
                }
                for u, s in users.items()
            }
        )
    )
    return rows


def run_polars(data: Path, out: Path) -> None:
    from datetime import date

    import polars as pl

    from tunewell.features.build import build_nightly_features
    from tunewell.lake.settings import UserSettings, ZonePeriod

    raw = json.loads((data / "users.json").read_text())
    users = {
        u: UserSettings(
            u,
            tz=v["tz"],
            sex=v["sex"],
            hr_max=v["hr_max"],
            tz_history=tuple(ZonePeriod(date.fromisoformat(d), tz) for d, tz in v["tz_history"]),
        )
        for u, v in raw.items()
    }
    silver = {n: pl.scan_parquet(data / f"{n}.parquet") for n in TABLES}
    build_nightly_features(silver, users).write_parquet(out)


def run_pandas(data: Path, out: Path) -> None:
    import pandas as pd

    from bench.pandas_reference import nightly_features

    tables = {n: pd.read_parquet(data / f"{n}.parquet") for n in TABLES}
    nightly_features(tables).to_parquet(out)


def child(impl: str, data: Path, out: Path) -> None:
    t0 = time.perf_counter()
    (run_polars if impl == "polars" else run_pandas)(data, out)
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": impl, "seconds": wall, "peak_rss_mb": rss_mb}))


def compare(pl_out: Path, pd_out: Path) -> int:
    import polars as pl

    a = pl.read_parquet(pl_out)
    b = pl.read_parquet(pd_out).with_columns(pl.col("sleep_date").cast(pl.Date))
    keys = ["user_id", "sleep_date"]
    j = a.filter(pl.col("sleep_ok")).join(b, on=keys, how="inner", suffix="_ref")
    if j.height != a.filter(pl.col("sleep_ok")).height:
        raise SystemExit(f"row mismatch: polars {a.height} nights, joined {j.height}")
    for c in COMPARE:
        x = j[c].cast(pl.Float64).to_numpy()
        y = j[f"{c}_ref"].cast(pl.Float64).to_numpy()
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            raise SystemExit(f"{c}: null patterns differ")
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=c)
    return j.height


def write_readme(args: argparse.Namespace, rows: dict, nights: int, res: list[dict]) -> None:
    readme = ROOT / "bench" / "README.md"
    head = readme.read_text().split("## Results")[0] if readme.exists() else ""
    lines = [
        "## Results",
        "",
        f"`{args.people}` people × `{args.days}` days, RR beats for the first "
        f"{args.rr_minutes} min of each night; input rows: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + ".",
        f"Both implementations agree (rtol 1e-7) on {nights:,} nights for: "
        + ", ".join(f"`{c}`" for c in COMPARE)
        + ".",
        "",
        "| implementation | wall time (s) | peak RSS (MB) |",
        "|---|---|---|",
    ]
    for r in res:
        lines.append(f"| {r['impl']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    lines.append("")
    readme.write_text(head + "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rr-minutes", type=int, default=30)
    ap.add_argument("--child", choices=["polars", "pandas"])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rows = generate(args.people, args.days, args.rr_minutes, data)
        res, outs = [], {}
        for impl in ("polars", "pandas"):
            outs[impl] = data / f"{impl}_out.parquet"
            p = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    impl,
                    "--data",
                    str(data),
                    "--out",
                    str(outs[impl]),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            res.append(json.loads(p.stdout.strip().splitlines()[-1]))
        nights = compare(outs["polars"], outs["pandas"])
    write_readme(args, rows, nights, res)
    for r in res:
        print(f"{r['impl']:7s} {r['seconds']:8.1f} s {r['peak_rss_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
