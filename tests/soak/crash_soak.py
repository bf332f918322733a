"""Crash soak: SIGKILL the nightly path at >= 20 points (every dangerous kind forced, the rest
chosen at random among all points a clean run reaches), re-run after each, and compare the lake
with a clean run by content. ``make soak`` (POINTS=24 by default); prints a table and a summary
line for the README.

    python tests/soak/crash_soak.py --points 24 --seed 1 [--users 2 --days 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reliability import harness

FORCED = [
    "decode:1",
    "decode:7",
    "before_rename:1",
    "before_rename:20",
    "after_rename:10",
    "manifest_update:1",
    "manifest_update:5",
    "silver_partition:1",
    "silver_partition:3",
    "silver_written",
    "before_gold",
    "feature_write:1",
    "gold_partition:2",
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--users", type=int, default=harness.DEMO_USERS)
    ap.add_argument("--days", type=int, default=harness.DEMO_DAYS)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tunewell-soak-") as tmp:
        root = Path(tmp)
        cfg = harness.make_demo(root, users=args.users, days=args.days)
        t0 = time.perf_counter()
        reached = harness.count_points(cfg, root / "clean", root / "points.log")
        clean_s = time.perf_counter() - t0
        reference = harness.lake_digest(root / "clean")
        counts = Counter(reached)
        forced = [p for p in FORCED if counts[p.split(":")[0]] >= int(p.partition(":")[2] or 1)]
        extra = max(args.points - len(forced), 0)
        rand = [f"any:{k}" for k in sorted(rng.sample(range(1, len(reached) + 1), extra))]
        print(
            f"clean run: {clean_s:.0f} s, {len(reached)} crash points reached "
            f"({dict(counts)}); lake: {len(reference)} documents and partitions"
        )
        survived, killed = 0, 0
        for point in forced + rand:
            name = point
            if point.startswith("any:"):
                name = f"{point} ({reached[int(point[4:]) - 1]})"
            t = time.perf_counter()
            out = harness.kill_and_recover(cfg, root / "lake", point, reference)
            killed += out.killed
            ok = out.killed and not out.problems
            survived += ok
            verdict = "identical" if ok else ("NOT KILLED" if not out.killed else "DIFFERS")
            print(f"{name:38s} {verdict:10s} {time.perf_counter() - t:5.0f} s", flush=True)
            for p in out.problems[:5]:
                print(f"    {p}")
        total = len(forced) + len(rand)
        print(
            f"SUMMARY: {survived}/{total} kill points survived (killed {killed}; "
            f"{len(forced)} forced, {len(rand)} random of {len(reached)}); lake identical to a "
            "clean run by content hash after each re-run"
        )
        return 0 if survived == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
