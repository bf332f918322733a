"""Crash-anywhere harness: run the nightly path in a subprocess, SIGKILL it at a named crash
point (``tunewell.lake.crash``), run it again, and compare the whole lake with a clean run.

The nightly path here is the flow's task functions called in order without Prefect (discover →
stage → commit → gold refresh → quality report), so a run costs seconds, not a temporary API
server's start-up; ``--prefect`` in the soak script runs the real ``tunewell nightly`` instead.

Lake comparison (:func:`lake_digest`): every silver and gold partition by the content hash of its
rows (order-independent), every manifest and quarantine document without its timestamp, and the
set of quarantined rows. Strays: temporary files, staging left over, empty partitions.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

PLAIN = Path(__file__).with_name("nightly_plain.py")
DEMO_USERS, DEMO_DAYS, DEMO_SEED = 2, 10, 3


def make_demo(root: Path, users: int = DEMO_USERS, days: int = DEMO_DAYS) -> Path:
    """A small demo inbox and its tunewell.toml under ``root``; returns the config path."""
    from tunewell.settings import Settings, settings_toml
    from tunewell.synth.generate import write_inbox
    from tunewell.synth.people import simulate

    inbox = root / "inbox"
    pop = simulate(users, days, DEMO_SEED)
    user_settings = write_inbox(pop, inbox)
    cfg = root / "tunewell.toml"
    cfg.write_text(settings_toml(Settings(lake=root / "lake", inbox=inbox, users=user_settings)))
    return cfg


@dataclass
class RunResult:
    returncode: int
    killed: bool
    stderr: str


def run_nightly(
    cfg: Path,
    lake: Path,
    *,
    crash_at: str | None = None,
    log: Path | None = None,
    timeout: float = 600,
    extra_env: dict[str, str] | None = None,
) -> RunResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEWELL_CRASH")}
    if crash_at:
        env["TUNEWELL_CRASH_AT"] = crash_at
    if log:
        env["TUNEWELL_CRASH_LOG"] = str(log)
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, str(PLAIN), "--config", str(cfg), "--lake", str(lake)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return RunResult(proc.returncode, proc.returncode == -signal.SIGKILL, proc.stderr[-3000:])


def count_points(cfg: Path, lake: Path, log: Path) -> list[str]:
    """Run clean with the crash log on; returns every crash point reached, in order."""
    log.unlink(missing_ok=True)
    res = run_nightly(cfg, lake, log=log)
    assert res.returncode == 0, res.stderr
    return log.read_text().split()


def _rows_hash(path: Path) -> str:
    df = pl.read_parquet(path)
    if df.is_empty():
        return "empty"
    # Floats to 9 decimals: polars' parallel reductions differ in the last bit between two clean
    # runs (rolling CV, load sums: ~1e-15 relative), which is not what a crash check is after.
    df = df.with_columns(pl.selectors.float().round(9))
    hashes = df.hash_rows(seed=0).sort()
    return hashlib.sha256(hashes.to_numpy().tobytes()).hexdigest()[:16] + f":{df.height}"


def _doc(path: Path) -> str:
    try:
        doc = json.loads(path.read_bytes())
    except ValueError:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    if isinstance(doc, dict):
        doc.pop("at", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def lake_digest(lake: Path) -> dict[str, str]:
    """Everything a reader of the lake can see, by content (not by bytes or timestamps)."""
    out: dict[str, str] = {}
    bad_rows: set[str] = set()
    for p in sorted(lake.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(lake).as_posix()
        top = rel.split("/", 1)[0]
        if top in ("silver", "gold") and p.name.endswith(".parquet"):
            out[rel] = _rows_hash(p)
        elif top == "manifest" or (top == "quarantine" and p.suffix == ".json"):
            out[rel] = _doc(p)
        elif rel.startswith("quarantine/rows/"):
            df = pl.read_parquet(p)
            bad_rows |= set(df["record_id"].to_list()) if "record_id" in df.columns else set()
        elif top == "quarantine":
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    out["quarantine/rows (record ids)"] = hashlib.sha256(
        "\n".join(sorted(bad_rows)).encode()
    ).hexdigest()[:16]
    return out


def strays(lake: Path) -> list[str]:
    """Files a reader could trip over or that a finished run should not leave behind."""
    found = [p for p in lake.rglob("*.tmp")]
    staging = lake / "staging"
    if staging.exists():
        found += [p for p in staging.rglob("*") if p.is_file()]
    return sorted(str(p.relative_to(lake)) for p in found)


def diff(a: dict[str, str], b: dict[str, str]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)} != {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


@dataclass
class KillOutcome:
    point: str
    killed: bool
    problems: list[str]


def kill_and_recover(cfg: Path, lake: Path, point: str, reference: dict[str, str]) -> KillOutcome:
    """Kill a fresh run at ``point``, run again, and list every difference from ``reference``
    (plus strays). An empty list is the pass."""
    import shutil

    shutil.rmtree(lake, ignore_errors=True)
    first = run_nightly(cfg, lake, crash_at=point)
    problems: list[str] = []
    if not first.killed and first.returncode != 0:
        problems.append(f"first run failed without being killed: {first.stderr}")
    again = run_nightly(cfg, lake)
    if again.returncode != 0:
        problems.append(f"re-run failed: {again.stderr}")
    else:
        problems += diff(reference, lake_digest(lake))
        problems += [f"stray {s}" for s in strays(lake)]
    return KillOutcome(point, first.killed, problems)
