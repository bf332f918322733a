"""Fuzz the FIT and Apple Health XML readers for a set time (``make fuzz FUZZ_SECONDS=60``).

A mutation fuzzer without coverage guidance (atheris needs a clang build here): each round takes a
seed from ``tests/fuzz/corpus/<target>/``, applies 1-8 random edits (byte flips, deletions,
insertions, truncation, duplicated slices: ``samples.mutate``) and stages the result in a fresh
lake, checking that nothing escapes, hangs, writes outside the lake or breaks the schema. Inputs
that fail are written to ``tests/fuzz/crashes/`` (not committed) and the exit code is 1.

    python tests/fuzz/fuzz_readers.py --seconds 60 [--seed 1] [--target fit|apple]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.samples import check_one, mutate

HERE = Path(__file__).parent
TARGETS = {"fit": ".fit", "apple": ".xml"}


def fuzz(target: str, seconds: float, rng: random.Random) -> tuple[int, int, Counter]:
    seeds = sorted((HERE / "corpus" / target).iterdir())
    runs = failures = 0
    codes: Counter = Counter()
    end = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix=f"tunewell-fuzz-{target}-") as tmp:
        while time.monotonic() < end:
            seed = rng.choice(seeds)
            ops = [
                (rng.randrange(5), rng.randrange(1 << 30), rng.randrange(1 << 16))
                for _ in range(rng.randint(1, 8))
            ]
            data = mutate(seed.read_bytes(), ops)
            work = Path(tmp) / "w"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            f = work / f"input{TARGETS[target]}"
            f.write_bytes(data)
            problems = check_one(f, work)
            runs += 1
            for q in (work / "lake" / "quarantine").glob("*.json"):
                if q.name.endswith(f"{TARGETS[target]}.json"):
                    codes[json.loads(q.read_text()).get("code")] += 1
            if problems:
                failures += 1
                out = HERE / "crashes"
                out.mkdir(exist_ok=True)
                (out / f"{target}-{runs}{TARGETS[target]}").write_bytes(data)
                print(f"{target} #{runs} from {seed.name}: {problems[:3]}", flush=True)
    return runs, failures, codes


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", choices=sorted(TARGETS), action="append")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    bad = 0
    for target in args.target or sorted(TARGETS):
        runs, failures, codes = fuzz(target, args.seconds, rng)
        bad += failures
        ingested = runs - sum(codes.values())
        print(
            f"SUMMARY {target}: {runs} mutated inputs in {args.seconds:.0f} s, "
            f"{failures} failures; "
            f"verdicts: {dict(codes.most_common())}, not quarantined: {ingested}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
