"""Benchmark: tunewell.features (polars) against the pandas reference on synthetic people.

Usage (from the project root)::

    .venv/bin/python bench/features_bench.py --people 100 --days 365 --rr-minutes 30

Data: person by person, ``tunewell.synth.people`` simulates one person-year (person ``i`` is the
same whatever the population size), turned into silver frames (sleep stages and episodes, minute
steps and HR, workouts) plus RR beats for the first ``--rr-minutes`` of every night, and written
to Parquet in the person's own folder, so generating 100 people never holds more than one.
Each implementation then runs in its own subprocess and loops over the people the way the
nightly flow does (``refresh.py`` builds one user at a time), so its peak RSS (``ru_maxrss``) is
its own and bounded by one person; wall time covers reading the Parquet and computing. The
outputs are compared column by column before any timing is reported, and a mismatch aborts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Before polars, in this process and every worker: the package sets polars' allocator options,
# which polars reads once, when it is first imported (as the CLI and the nightly flow get them).
import tunewell  # noqa: E402, F401

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


def simulate_one(index: int, days: int, seed: int):
    """Person ``index`` of ``simulate(n, days, seed)`` for any n > index, without the others."""
    from tunewell.synth import people as sp

    p = sp.make_people(index + 1, seed)[index]
    b = sp._person_block(p, index, seed, sp.DEFAULT_START, days)
    ts = {
        "nights": ("bed_utc", "onset_utc", "wake_utc", "out_utc"),
        "stages": ("start_utc", "end_utc"),
        "hrv5": ("start_utc",),
        "minutes": ("start_utc",),
        "workouts": ("start_utc", "end_utc"),
    }
    frames = {k: b[k].with_columns([sp._ts(c) for c in cols]) for k, cols in ts.items()}
    return sp.Population(people=[p], tz_history={p.user_id: b["hist"]}, **frames)


def generate(people: int, days: int, rr_minutes: int, out: Path) -> dict:
    from tunewell.synth.silver import silver_from_population, users_of

    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    meta = {}
    for i in range(people):
        pop = simulate_one(i, days, seed=7)
        users = users_of(pop)
        silver = silver_from_population(pop, users, rr_minutes=rr_minutes)
        (uid,) = users
        d = out / uid
        d.mkdir()
        for name in TABLES:
            df = silver[name].collect()
            df.write_parquet(d / f"{name}.parquet")
            rows[name] += df.height
        s = users[uid]
        meta[uid] = {
            "tz": s.tz,
            "sex": s.sex,
            "hr_max": s.hr_max,
            "tz_history": [[str(p.since), p.tz] for p in s.tz_history],
        }
        print(f"generated {uid}", file=sys.stderr, flush=True)
    (out / "users.json").write_text(json.dumps(meta))
    return rows


def _users(data: Path) -> dict:
    from datetime import date

    from tunewell.settings import UserSettings, ZonePeriod

    raw = json.loads((data / "users.json").read_text())
    return {
        u: UserSettings(
            u,
            tz=v["tz"],
            sex=v["sex"],
            hr_max=v["hr_max"],
            tz_history=tuple(ZonePeriod(date.fromisoformat(d), tz) for d, tz in v["tz_history"]),
        )
        for u, v in raw.items()
    }


def run_polars(data: Path, uid: str, user, out: Path) -> None:
    import polars as pl

    from tunewell.features.build import build_nightly_features

    silver = {n: pl.scan_parquet(data / uid / f"{n}.parquet") for n in TABLES}
    build_nightly_features(silver, {uid: user}).write_parquet(out)


def run_pandas(data: Path, uid: str, user, out: Path) -> None:
    import pandas as pd

    from bench.pandas_reference import nightly_features

    tables = {n: pd.read_parquet(data / uid / f"{n}.parquet") for n in TABLES}
    nightly_features(tables).to_parquet(out)


def _timed(impl: str, data: Path, uid: str, user, out: Path) -> float:
    run = run_polars if impl == "polars" else run_pandas
    t = time.perf_counter()
    run(data, uid, user, out)
    return time.perf_counter() - t


def child(impl: str, data: Path, out: Path, workers: int) -> None:
    """One implementation over every person; with ``workers`` > 1, people in that many
    processes. Peak memory is then the sum: this process plus ``workers`` × the largest
    worker's peak (an upper bound on what was resident at once)."""
    users = _users(data)
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = [
                pool.submit(_timed, impl, data, uid, u, out / f"{uid}.parquet")
                for uid, u in users.items()
            ]
            per = [f.result() for f in futs]
    else:
        per = [_timed(impl, data, uid, u, out / f"{uid}.parquet") for uid, u in users.items()]
    wall = time.perf_counter() - t0
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    # CPU seconds (all threads and workers): on a shared machine wall time mostly measures the
    # neighbours' load, CPU time what the implementation itself spent.
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    rss_mb = me.ru_maxrss / 1024
    if workers > 1:
        rss_mb += workers * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "impl": impl if workers == 1 else f"{impl} ({workers} processes)",
                "seconds": wall,
                "cpu_seconds": cpu,
                "per_person": per,
                "peak_rss_mb": rss_mb,
                "malloc_conf": os.environ.get("_RJEM_MALLOC_CONF", ""),
            }
        )
    )


def compare(pl_out: Path, pd_out: Path) -> int:
    import polars as pl

    a = pl.concat([pl.read_parquet(f) for f in sorted(pl_out.glob("*.parquet"))])
    b = pl.concat(
        [
            pl.read_parquet(f).with_columns(pl.col("sleep_date").cast(pl.Date))
            for f in sorted(pd_out.glob("*.parquet"))
        ],
        how="vertical_relaxed",
    )
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


def _versions() -> str:
    import platform

    import pandas as pd
    import polars as pl

    return (
        f"Python {platform.python_version()}, polars {pl.__version__}, pandas {pd.__version__}, "
        f"numpy {np.__version__}; {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GB RAM"
    )


def write_readme(args: argparse.Namespace, rows: dict, nights: int, res: list[dict]) -> None:
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    head, _, rest = text.partition("## Results")
    # Only this section is rewritten: the ingest and scaling sections after it stay.
    tail = rest[rest.index("\n## ") :] if "\n## " in rest else ""
    lines = [
        "## Results",
        "",
        f"Machine: {_versions()}.",
        "Command: `.venv/bin/python bench/features_bench.py "
        f"--people {args.people} --days {args.days} --rr-minutes {args.rr_minutes}`.",
        "",
        f"`{args.people}` people × `{args.days}` days, RR beats for the first "
        f"{args.rr_minutes} min of each night; input rows: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + ".",
        f"Both implementations agree (rtol 1e-7) on {nights:,} nights for: "
        + ", ".join(f"`{c}`" for c in COMPARE)
        + ".",
        "",
        f"Median of {args.repeat} interleaved run(s); peak RSS is the largest of them.",
        "",
        "| implementation | total (s) | per person median (s) | per person max (s) "
        "| peak RSS (MB) | CPU (s) | speed-up vs pandas (wall) | speed-up (CPU) "
        "| memory vs pandas |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ref = next(r for r in res if r["impl"] == "pandas")
    for r in res:
        per = np.array(r["per_person"])
        lines.append(
            f"| {r['impl']} | {r['seconds']:.1f} | {np.median(per):.2f} | {per.max():.2f} "
            f"| {r['peak_rss_mb']:.0f} | {r['cpu_seconds']:.1f} "
            f"| {ref['seconds'] / r['seconds']:.2f}× "
            f"| {ref['cpu_seconds'] / r['cpu_seconds']:.2f}× "
            f"| {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}× |"
        )
    lines.append("")
    readme.write_text(head + "\n".join(lines) + tail)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rr-minutes", type=int, default=30)
    ap.add_argument("--workers", type=int, default=1, help="also time polars in N processes")
    ap.add_argument("--repeat", type=int, default=1, help="runs per implementation (median)")
    ap.add_argument("--keep-data", type=Path, help="generate into / reuse this folder")
    ap.add_argument("--no-readme", action="store_true", help="print only, leave README as is")
    ap.add_argument("--child", choices=["polars", "pandas"])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.out, args.workers)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep_data or Path(tmp)
        if args.keep_data and (data / "rows.json").exists():
            rows = json.loads((data / "rows.json").read_text())
        else:
            data.mkdir(parents=True, exist_ok=True)
            rows = generate(args.people, args.days, args.rr_minutes, data)
            (data / "rows.json").write_text(json.dumps(rows))
        runs = [("polars", 1), ("pandas", 1)]
        if args.workers > 1:
            runs.insert(1, ("polars", args.workers))
        res: list[dict] = []
        nights = 0
        for rep in range(args.repeat):
            # Interleaved, so a change in the machine's load hits every implementation alike.
            for impl, workers in runs:
                out = Path(tmp) / f"{impl}_{workers}_out"
                # Through a small launcher: a child forked straight from this process (which
                # may have just generated the data) would report this process's peak RSS.
                p = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
                        sys.executable,
                        __file__,
                        "--child",
                        impl,
                        "--workers",
                        str(workers),
                        "--data",
                        str(data),
                        "--out",
                        str(out),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
                r = json.loads(p.stdout.strip().splitlines()[-1])
                r["rep"] = rep
                res.append(r)
                print(
                    f"run {rep}: {r['impl']:22s} {r['seconds']:8.1f} s {r['cpu_seconds']:8.1f} "
                    f"cpu-s {r['peak_rss_mb']:6.0f} MB",
                    file=sys.stderr,
                )
            ref = Path(tmp) / "pandas_1_out"
            for impl, workers in runs:
                if impl == "polars":
                    nights = compare(Path(tmp) / f"{impl}_{workers}_out", ref)
    summary = _summarise(res)
    if not args.no_readme:
        write_readme(args, rows, nights, summary)
    for r in summary:
        print(
            f"{r['impl']:22s} {r['seconds']:8.1f} s {r['cpu_seconds']:8.1f} cpu-s "
            f"{r['peak_rss_mb']:8.0f} MB "
            f"runs {', '.join(f'{x:.1f}' for x in r['runs'])}",
            flush=True,
        )


def _summarise(res: list[dict]) -> list[dict]:
    """Per implementation: the median run's numbers, plus every run's total."""
    out = []
    for impl in dict.fromkeys(r["impl"] for r in res):
        rs = sorted((r for r in res if r["impl"] == impl), key=lambda r: r["seconds"])
        med = dict(rs[(len(rs) - 1) // 2])
        med["runs"] = [r["seconds"] for r in res if r["impl"] == impl]
        med["seconds"] = float(np.median(med["runs"]))
        med["cpu_seconds"] = float(np.median([r.get("cpu_seconds", np.nan) for r in rs]))
        med["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
        out.append(med)
    return out


if __name__ == "__main__":
    main()
