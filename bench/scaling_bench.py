"""Scaling of the gold refresh (issue 11): backfill size, incremental nights, worker processes.

Usage (from the project root)::

    .venv/bin/python bench/scaling_bench.py backfill --data DIR --people 50 100 --repeats 3
    .venv/bin/python bench/scaling_bench.py incremental --history 365 730 --people 3 --repeats 3
    .venv/bin/python bench/scaling_bench.py --quick

Every timed run goes through the real path: a lake written with ``store.upsert``, gold built by
``features.refresh.refresh_gold`` in a fresh child process (wall and CPU seconds of the child and
its workers, peak RSS, the load average before and after, since the machine may be shared).

- ``backfill``: the silver of the first N people of a ``features_bench.py --keep-data`` folder
  (generated there once, person by person) goes into one lake; each run deletes gold and rebuilds
  it for N people. Linear scaling means seconds(100) / seconds(50) = 2. ``--workers 2`` also
  times the same backfill with ``refresh_gold(max_workers=2)``.
- ``incremental``: for each history length H, a lake holds H days of every person's data with
  gold built; one more night (everything from noon UTC of day H on) is then appended with
  ``store.upsert`` and owed with ``manifest.add_pending``, as an ingest commits it, and the timed
  run is ``refresh_gold(settings)`` on those owed dates. Each run starts from a copy of the
  prepared lake. The cost should depend on the new night and the windows it moves, not on H.

Before any time is reported the gold rows are checked: the incremental refresh must equal a full
recompute of the same lake, and the backfill with workers the sequential one (all columns,
non-float exactly, float to rtol 1e-9). ``--quick`` runs only these checks on small sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

GOLD = ("nightly_features", "daily_load")


def _settings(lake: Path, users: dict):
    from tunewell.settings import Settings

    return Settings(lake=lake, inbox=lake.parent / "inbox", users=users)


def _users_json(users: dict) -> dict:
    return {
        u: {
            "tz": s.tz,
            "sex": s.sex,
            "hr_max": s.hr_max,
            "tz_history": [[str(p.since), p.tz] for p in s.tz_history],
        }
        for u, s in users.items()
    }


def _write_silver(lake: Path, frames: dict) -> None:
    from tunewell.lake import store

    for name, df in frames.items():
        if df.height:
            store.upsert(lake, name, df)


def _upsert_person(data: Path, lake: Path, uid: str) -> str:
    import polars as pl
    from features_bench import TABLES

    _write_silver(lake, {n: pl.read_parquet(data / uid / f"{n}.parquet") for n in TABLES})
    return uid


def lake_from_bench_data(data: Path, lake: Path, people: int, workers: int = 2) -> dict:
    """The first ``people`` of a features_bench folder, upserted into a fresh lake.

    People go in through ``store.upsert`` in ``workers`` processes: each person's rows land in
    their own (user, year) partition files, so the writers never touch the same file, and the
    100-person lake (~3 CPU s of zstd and Arrow casts a person) is not the bench's slowest part.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from features_bench import _users

    from tunewell.lake import store

    store.init_lake(lake)
    users = dict(sorted(_users(data).items())[:people])
    ids = list(users)
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for uid in pool.map(_upsert_person, [data] * len(ids), [lake] * len(ids), ids):
                print(f"lake: {uid}", file=sys.stderr, flush=True)
    else:
        for uid in ids:
            print(f"lake: {_upsert_person(data, lake, uid)}", file=sys.stderr, flush=True)
    (lake.parent / "users.json").write_text(json.dumps(_users_json(users)))
    return users


def _load_users(path: Path) -> dict:
    """The users a ``users.json`` describes (the features bench's format and reader)."""
    from features_bench import _users

    return _users(path.parent)


# --- the timed child -------------------------------------------------------------------------


def child(lake: Path, users_file: Path, mode: str, people: int, workers: int) -> None:
    """One refresh in this fresh process; prints its measurements as JSON."""
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    from tunewell.features.refresh import refresh_gold

    users = _load_users(users_file)
    s = _settings(lake, users)
    t1, c1 = time.perf_counter(), time.process_time()  # after the imports
    if mode == "backfill":
        ids = sorted(users)[:people]
        stats = refresh_gold(s, {u: [] for u in ids}, max_workers=workers)
    else:
        stats = refresh_gold(s, max_workers=workers)  # the owed dates, as the nightly run does
    wall = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                "cpu_self_s": time.process_time() - c0,
                "refresh_wall_s": time.perf_counter() - t1,
                "refresh_cpu_self_s": time.process_time() - c1,
                "rss_mb": me.ru_maxrss / 1024,
                "worker_rss_mb": kids.ru_maxrss / 1024 if workers > 1 else 0.0,
                "load_before": load0,
                "load_after": os.getloadavg()[0],
                "users": len(stats.users),
                "ranges": stats.ranges,
                "rows": stats.rows,
            }
        )
    )


# Linux carries a forked process's pre-exec peak RSS into its ru_maxrss, so a child forked
# straight from this process (which may have generated a lake) would report this one's peak:
# children are started from a small launcher instead.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def timed(lake: Path, users_file: Path, mode: str, people: int, workers: int = 1) -> dict:
    cmd = [sys.executable, "-c", LAUNCHER, sys.executable, __file__, "--child", mode]
    cmd += ["--lake", str(lake)]
    cmd += ["--users-file", str(users_file), "--n", str(people), "--workers", str(workers)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"child failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- equality --------------------------------------------------------------------------------


def gold_frames(lake: Path) -> dict:
    from tunewell.lake import store

    return {
        t: store.read(lake, t).sort("user_id", store.table(t).time_column).rechunk() for t in GOLD
    }


def assert_same(a: dict, b: dict, what: str) -> int:
    """All columns equal: non-float exactly, float to rtol 1e-9 with the same nulls."""
    n = 0
    for t in GOLD:
        x, y = a[t], b[t]
        if x.columns != y.columns or x.height != y.height:
            raise SystemExit(f"{what}: {t} differs in shape {x.shape} vs {y.shape}")
        for c in x.columns:
            u, v = x[c], y[c]
            if u.dtype.is_float():
                p, q = u.to_numpy(), v.to_numpy()
                ok = np.array_equal(np.isnan(p), np.isnan(q)) and np.allclose(
                    p, q, rtol=1e-9, atol=0, equal_nan=True
                )
            else:
                ok = u.equals(v)
            if not ok:
                raise SystemExit(f"{what}: {t}.{c} differs")
        n += x.height
    return n


# --- backfill ----------------------------------------------------------------------------------


def backfill(args: argparse.Namespace) -> list[dict]:
    work = args.work
    lake = work / "lake"
    users_file = work / "users.json"
    top = max(args.people)
    if not (work / "lake.ready").exists() or json.loads((work / "lake.ready").read_text()) < top:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        lake_from_bench_data(args.data, lake, top, args.lake_workers)
        (work / "lake.ready").write_text(json.dumps(top))
    res = []
    runs = [(n, 1) for n in args.people] + ([(top, args.workers)] if args.workers > 1 else [])
    check: dict[int, dict] = {}
    for rep in range(args.repeats):
        for n, w in runs:  # interleaved, so a change of the machine's load hits every size
            shutil.rmtree(lake / "gold", ignore_errors=True)
            r = timed(lake, users_file, "backfill", n, w) | {"people": n, "workers": w}
            res.append(r)
            _say(f"backfill {n} people, {w} worker(s)", r)
            if rep == 0 and n == top:
                check[w] = gold_frames(lake)
    if len(check) > 1:
        rows = assert_same(check[1], check[args.workers], "workers vs sequential")
        print(f"equal: {args.workers} workers = sequential ({rows:,} gold rows)", file=sys.stderr)
    return res


# --- incremental -------------------------------------------------------------------------------


def _split_person(index: int, days: int, cut: datetime) -> tuple[dict, dict, dict]:
    """Person ``index`` over ``days`` + 1 days, split at ``cut``: (history, new night, users)."""
    import polars as pl
    from features_bench import TABLES, simulate_one

    from tunewell.synth.silver import silver_from_population, users_of

    pop = simulate_one(index, days + 1, seed=7)
    users = users_of(pop)
    silver = silver_from_population(pop, users, rr_minutes=30)
    old, new = {}, {}
    for name in TABLES:
        df = silver[name].collect()
        before = pl.col("start_utc") < cut
        old[name], new[name] = df.filter(before), df.filter(~before)
    return old, new, users


def prepare_incremental(work: Path, days: int, people: int) -> tuple[Path, Path]:
    """A lake with ``days`` of history and gold built, plus the next night's rows beside it."""
    from tunewell.features.refresh import refresh_gold
    from tunewell.lake import store
    from tunewell.synth.people import DEFAULT_START

    base = work / f"history_{days}"
    if (base / "ready").exists():
        return base / "lake", base / "new"
    shutil.rmtree(base, ignore_errors=True)
    lake, new_dir = base / "lake", base / "new"
    store.init_lake(lake)
    new_dir.mkdir(parents=True)
    cut = datetime.combine(DEFAULT_START + timedelta(days=days), datetime.min.time(), UTC)
    cut += timedelta(hours=12)
    users: dict = {}
    for i in range(people):
        old, new, us = _split_person(i, days, cut)
        users |= us
        _write_silver(lake, old)
        for name, df in new.items():
            df.write_parquet(new_dir / f"{next(iter(us))}_{name}.parquet")
        print(f"history {days} d: {next(iter(us))}", file=sys.stderr, flush=True)
    (base / "users.json").write_text(json.dumps(_users_json(users)))
    refresh_gold(_settings(lake, users), None, full=True)
    assert not list(lake.glob("manifest/gold_pending/*")), "history gold left dates owed"
    (base / "ready").write_text("1")
    return lake, new_dir


def append_night(lake: Path, new_dir: Path) -> dict:
    """The new night into silver, owed to gold, as an ingest commit leaves it."""
    import polars as pl

    from tunewell.lake import manifest
    from tunewell.lake.timezones import local_date

    changed: dict = {}
    for f in sorted(new_dir.glob("*.parquet")):
        df = pl.read_parquet(f)
        if not df.height:
            continue
        _write_silver(lake, {f.stem.split("_", 1)[1]: df})
        for (uid,), part in (
            df.select("user_id", local_date().alias("d")).unique().group_by(["user_id"])
        ):
            changed.setdefault(uid, set()).update(part["d"].to_list())
    owed = {u: sorted(d) for u, d in changed.items()}
    manifest.add_pending(lake, owed)
    return owed


def incremental(args: argparse.Namespace) -> list[dict]:
    from tunewell.lake import store

    res = []
    prepared = {h: prepare_incremental(args.work, h, args.inc_people) for h in args.history}
    for rep in range(args.repeats):
        for h, (lake, new_dir) in prepared.items():
            run = args.work / "run" / "lake"
            shutil.rmtree(run.parent, ignore_errors=True)
            shutil.copytree(lake, run)
            t = time.perf_counter()
            owed = append_night(run, new_dir)
            append_s = time.perf_counter() - t
            users_file = lake.parent / "users.json"
            r = timed(run, users_file, "incremental", 0, args.workers_inc)
            r |= {
                "history_days": h,
                "append_s": append_s,
                "owed_days": max(map(len, owed.values())),
            }
            res.append(r)
            _say(f"incremental, {h} d history", r)
            if rep == 0:
                inc = gold_frames(run)
                if any(v == ("all", "all") for v in r["ranges"].values()):
                    raise SystemExit("the night was rebuilt in full, not incrementally")
                shutil.rmtree(run / "gold")
                full = _settings(run, _load_users(users_file))
                from tunewell.features.refresh import refresh_gold

                refresh_gold(full, {u: [] for u in store.users_in(run)})
                rows = assert_same(inc, gold_frames(run), f"incremental vs full ({h} d)")
                print(
                    f"equal: incremental = full recompute, {h} d ({rows:,} rows)", file=sys.stderr
                )
    shutil.rmtree(args.work / "run", ignore_errors=True)
    return res


def _say(what: str, r: dict) -> None:
    print(
        f"{what}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} cpu-s, {r['rss_mb']:.0f} MB"
        f" (workers {r['worker_rss_mb']:.0f} MB), load {r['load_before']:.1f}->"
        f"{r['load_after']:.1f}",
        file=sys.stderr,
        flush=True,
    )


def summarise(res: list[dict], key: str) -> list[dict]:
    out = []
    for k in dict.fromkeys((r[key], r.get("workers", 1)) for r in res):
        rs = [r for r in res if (r[key], r.get("workers", 1)) == k]
        out.append(
            {
                key: k[0],
                "workers": k[1],
                "n": len(rs),
                "wall_s": float(np.median([r["wall_s"] for r in rs])),
                "cpu_s": float(np.median([r["cpu_s"] for r in rs])),
                "refresh_wall_s": float(np.median([r["refresh_wall_s"] for r in rs])),
                "refresh_cpu_self_s": float(np.median([r["refresh_cpu_self_s"] for r in rs])),
                "append_s": float(np.median([r.get("append_s", np.nan) for r in rs])),
                "rss_mb": max(r["rss_mb"] for r in rs),
                "worker_rss_mb": max(r["worker_rss_mb"] for r in rs),
                "load": [
                    round(min(r["load_before"] for r in rs), 1),
                    round(max(r["load_after"] for r in rs), 1),
                ],
                "walls": [round(r["wall_s"], 1) for r in rs],
            }
        )
    return out


def quick(work: Path) -> None:
    """Equality only, small sizes: incremental = full recompute at two history lengths, and a
    backfill in 2 worker processes = the sequential one."""
    incremental(
        argparse.Namespace(work=work, history=[40, 75], inc_people=2, repeats=1, workers_inc=1)
    )
    lake = work / "history_40" / "lake"
    users_file = work / "history_40" / "users.json"
    done = []
    for w in (1, 2):
        shutil.rmtree(lake / "gold", ignore_errors=True)
        r = timed(lake, users_file, "backfill", 2, w)
        if r["users"] != 2:
            raise SystemExit(f"backfill built {r['users']} users, not 2")
        done.append(gold_frames(lake))
    rows = assert_same(done[0], done[1], "workers vs sequential")
    print(f"equal: 2 workers = sequential ({rows:,} gold rows)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", choices=["backfill", "incremental"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path, help="features_bench --keep-data folder (backfill)")
    ap.add_argument("--work", type=Path, help="where lakes are kept between runs")
    ap.add_argument("--people", type=int, nargs="+", default=[50, 100])
    ap.add_argument("--workers", type=int, default=1, help="backfill: also time N processes")
    ap.add_argument("--lake-workers", type=int, default=2, help="processes writing the lake")
    ap.add_argument("--history", type=int, nargs="+", default=[365, 730])
    ap.add_argument("--inc-people", type=int, default=3)
    ap.add_argument("--workers-inc", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="append the summary here")
    ap.add_argument("--child")
    ap.add_argument("--lake", type=Path)
    ap.add_argument("--users-file", type=Path)
    ap.add_argument("--n", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        child(args.lake, args.users_file, args.child, args.n, args.workers)
        return
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            quick(Path(tmp))
        print("scaling quick: equal", flush=True)
        return
    if args.work is None:
        raise SystemExit("--work DIR is needed (lakes are kept there between runs)")
    if args.mode == "backfill":
        summary = summarise(backfill(args), "people")
    elif args.mode == "incremental":
        summary = summarise(incremental(args), "history_days")
    else:
        raise SystemExit("choose backfill, incremental or --quick")
    text = json.dumps({"mode": args.mode, "summary": summary})
    print(text, flush=True)
    if args.json:
        with args.json.open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
