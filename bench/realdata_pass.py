"""Run every real third-party file in ../shared/data through the ingest runner, per format.

Prints (and writes to bench/out/realdata_pass.md) what each folder yields: files ingested,
quarantined with reasons, skipped, and rows per silver table. Not a benchmark of speed, though
the seconds are shown: a reader that fails on a real file is the failure this catches.

    python bench/realdata_pass.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from tunewell.ingest import runner
from tunewell.settings import Settings, UserSettings

# (label, folder relative to shared/data, user, options)
RUNS = [
    ("Garmin FIT (python-fitparse)", "fit/python-fitparse", "fit", {}),
    ("Garmin/other FIT (FITfileR)", "fit/FITfileR", "fit2", {}),
    ("FIT (fitdecode)", "fit/fitdecode", "fit3", {}),
    ("Apple Health (apple-health-parser)", "apple-health/apple-health-parser", "apple1", {}),
    ("Apple Health (apple-health-analyzer)", "apple-health/apple-health-analyzer", "apple2", {}),
    ("Apple Health (healthkit-to-sqlite)", "apple-health/healthkit-to-sqlite", "apple3", {}),
    ("Fitbit JSON + self-reports (PMData p01)", "pmdata/p01", "p01", {}),
    (
        "Fitabase CSV (one participant)",
        "fitbit-fitabase",
        "fitabase",
        {"fitabase_id": "6962181067"},
    ),
    ("Google Fit Takeout", "google-fit", "gfit", {}),
    ("MMASH RR + actigraphy (user_1)", "mmash/user_1", "mmash1", {"start_date": date(2020, 1, 6)}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
    )
    args = ap.parse_args()
    lines = [
        "| format | folder | files | ingested | quarantined | skipped | rows per table | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for label, rel, user, opts in RUNS:
        folder = args.shared / rel
        if not folder.exists():
            lines.append(f"| {label} | {rel} | absent | | | | | |")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            s = Settings(lake=Path(tmp) / "lake", users={user: UserSettings(user, tz="UTC")})
            t0 = time.perf_counter()
            rep = runner.ingest_paths([folder], user, s, options=opts)
            dt = time.perf_counter() - t0
        rows = {t: st.inserted for t, st in rep.tables.items() if st.inserted}
        row_txt = ", ".join(f"{t} {n:,}" for t, n in sorted(rows.items()))
        lines.append(
            f"| {label} | {rel} | {len(rep.files)} | {rep.count('ingested')} | "
            f"{rep.count('quarantined')} | {rep.count('skipped')} | {row_txt} | {dt:.1f} |"
        )
        notes += [
            f"- {label}: `{Path(f.file).name}` quarantined: {f.error}"
            for f in rep.files
            if f.status == "quarantined"
        ]
    text = "\n".join([*lines, "", *notes]) + "\n"
    print(text)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "realdata_pass.md").write_text(text)


if __name__ == "__main__":
    main()
