"""Write a simulated person as a WHOOP app export (the four CSVs, exact headers).

A WHOOP cycle runs from one sleep's start to the next, so each truth night opens a cycle and the
last one stays open (empty end, no strain yet), as in a real export taken in the morning. Clock
times are local to the cycle's zone, written as ``UTC+01:00`` (``UTCZ`` for zero), so travel and
DST show up exactly as WHOOP writes them. "Sleep onset" is the start of the sleep record (truth
``bed_utc``) and "Wake onset" its end (truth ``out_utc``).
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from tunewell.synth.people import Population

CYCLE_COLS = ["Cycle start time", "Cycle end time", "Cycle timezone"]
SLEEP_COLS = [
    "Sleep onset",
    "Wake onset",
    "Sleep performance %",
    "Respiratory rate (rpm)",
    "Asleep duration (min)",
    "In bed duration (min)",
    "Light sleep duration (min)",
    "Deep (SWS) duration (min)",
    "REM duration (min)",
    "Awake duration (min)",
    "Sleep need (min)",
    "Sleep debt (min)",
    "Sleep efficiency %",
    "Sleep consistency %",
]
CYCLES_HEADER = [
    *CYCLE_COLS,
    "Recovery score %",
    "Resting heart rate (bpm)",
    "Heart rate variability (ms)",
    "Skin temp (celsius)",
    "Blood oxygen %",
    "Day Strain",
    "Energy burned (cal)",
    "Max HR (bpm)",
    "Average HR (bpm)",
    *SLEEP_COLS,
]
SLEEPS_HEADER = CYCLE_COLS + SLEEP_COLS + ["Nap"]
WORKOUTS_HEADER = [
    *CYCLE_COLS,
    "Workout start time",
    "Workout end time",
    "Duration (min)",
    "Activity name",
    "Activity Strain",
    "Energy burned (cal)",
    "Max HR (bpm)",
    "Average HR (bpm)",
    "HR Zone 1 %",
    "HR Zone 2 %",
    "HR Zone 3 %",
    "HR Zone 4 %",
    "HR Zone 5 %",
    "GPS enabled",
    "Distance (meters)",
    "Altitude gain (meters)",
    "Altitude change (meters)",
]
JOURNAL_HEADER = [*CYCLE_COLS, "Question text", "Answered yes", "Notes"]
QUESTIONS = (
    "Did you have any alcoholic drinks?",
    "Did you view a phone or other screen device while in bed?",
    "Did you have any caffeine?",
)
# people.JOURNAL_ITEMS → the app's question text
ITEM_QUESTION = dict(zip(("alcohol", "screen_in_bed", "caffeine"), QUESTIONS, strict=True))
_ACTIVITY = {
    "running": "Running",
    "cycling": "Cycling",
    "walking": "Walking",
    "strength": "Weightlifting",
}


def zone_label(offset_min: int) -> str:
    if offset_min == 0:
        return "UTCZ"
    sign = "-" if offset_min < 0 else "+"
    h, m = divmod(abs(offset_min), 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


def _local(t: datetime | None, off: int) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t.timestamp() + off * 60, ZoneInfo("UTC")).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _write(path: Path, header: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def write_whoop(pop: Population, user_id: str, out_dir: Path, *, seed: int = 0) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nights = pop.nights.filter(pl.col("user_id") == user_id).sort("bed_utc").to_dicts()
    stages = pop.stages.filter(pl.col("user_id") == user_id)
    mins = stages.group_by("sleep_date", "stage").agg(
        ((pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds().sum() / 60).alias("m")
    )
    stage_min = {(r["sleep_date"], r["stage"]): r["m"] for r in mins.to_dicts()}
    workouts = pop.workouts.filter(pl.col("user_id") == user_id).sort("start_utc").to_dicts()
    rng = np.random.default_rng([seed, int(hashlib.sha1(user_id.encode()).hexdigest()[:8], 16)])
    # Simulated journal answers (with their planted effects) where the population has them. A
    # cycle's answers describe the day that cycle covers (WHOOP asks each morning about the
    # previous cycle), i.e. the day d after its opening sleep, whose evening leads into night d+1.
    planted = {
        (r["date"], ITEM_QUESTION[r["item"]]): r["yes"]
        for r in pop.journal.filter(pl.col("user_id") == user_id).to_dicts()
    }

    cycles, sleeps, wrows, journal = [], [], [], []
    for i, n in enumerate(nights):
        start = n["bed_utc"]
        end = nights[i + 1]["bed_utc"] if i + 1 < len(nights) else None
        off = int(start.astimezone(ZoneInfo(n["tz"])).utcoffset().total_seconds() // 60)
        cyc = {
            "Cycle start time": _local(start, off),
            "Cycle end time": _local(end, off),
            "Cycle timezone": zone_label(off),
        }
        d = n["sleep_date"]
        in_bed = round((n["out_utc"] - n["bed_utc"]).total_seconds() / 60)
        asleep = round(n["tst_min"])
        sleep = {
            "Sleep onset": _local(n["bed_utc"], off),
            "Wake onset": _local(n["out_utc"], off),
            "Sleep performance %": int(np.clip(100 * asleep / 480, 20, 100)),
            "Respiratory rate (rpm)": round(float(n["resp_rate"]), 1),
            "Asleep duration (min)": asleep,
            "In bed duration (min)": in_bed,
            "Light sleep duration (min)": round(stage_min.get((d, "light"), 0)),
            "Deep (SWS) duration (min)": round(stage_min.get((d, "deep"), 0)),
            "REM duration (min)": round(stage_min.get((d, "rem"), 0)),
            "Awake duration (min)": in_bed - asleep,
            "Sleep need (min)": 480,
            "Sleep debt (min)": max(0, 480 - asleep),
            "Sleep efficiency %": round(100 * asleep / in_bed, 2),
            "Sleep consistency %": int(rng.integers(70, 95)),
        }
        mine = [
            w for w in workouts if start <= w["start_utc"] and (end is None or w["start_utc"] < end)
        ]
        strains = [
            round(float(rng.uniform(13, 16) if w["hard"] else rng.uniform(7, 10)), 1) for w in mine
        ]
        recovery = int(
            np.clip(60 + 120 * (np.log(n["rmssd_ms"]) - 4.0) - 3 * (n["rhr_bpm"] - 55), 1, 99)
        )
        cycles.append(
            cyc
            | {
                "Recovery score %": recovery,
                "Resting heart rate (bpm)": round(n["rhr_bpm"]),
                "Heart rate variability (ms)": round(n["rmssd_ms"]),
                "Skin temp (celsius)": round(float(n["skin_temp_c"]), 2),
                "Blood oxygen %": round(float(n["spo2_pct"]), 2),
                "Day Strain": "" if end is None else round(6 + sum(strains) * 0.6, 1),
                "Energy burned (cal)": ""
                if end is None
                else round(
                    1900
                    + 9 * sum((w["end_utc"] - w["start_utc"]).total_seconds() / 60 for w in mine)
                ),
                "Max HR (bpm)": ""
                if end is None
                else int(max([w["max_hr"] for w in mine] + [120])),
                "Average HR (bpm)": "" if end is None else round(n["rhr_bpm"] + 15),
            }
            | sleep
        )
        sleeps.append(cyc | sleep | {"Nap": "false"})
        for w, strain in zip(mine, strains, strict=True):
            minutes = (w["end_utc"] - w["start_utc"]).total_seconds() / 60
            wrows.append(
                cyc
                | {
                    "Workout start time": _local(w["start_utc"], off),
                    "Workout end time": _local(w["end_utc"], off),
                    "Duration (min)": round(minutes),
                    "Activity name": _ACTIVITY[w["activity"]],
                    "Activity Strain": strain,
                    "Energy burned (cal)": round(minutes * 9),
                    "Max HR (bpm)": int(w["max_hr"]),
                    "Average HR (bpm)": int(w["avg_hr"]),
                    "HR Zone 1 %": 10,
                    "HR Zone 2 %": 20,
                    "HR Zone 3 %": 40,
                    "HR Zone 4 %": 25,
                    "HR Zone 5 %": 5,
                    "GPS enabled": str(w["activity"] == "running").lower(),
                    "Distance (meters)": round(minutes * 180) if w["activity"] == "running" else "",
                    "Altitude gain (meters)": "",
                    "Altitude change (meters)": "",
                }
            )
        for q in QUESTIONS:
            yes = bool(rng.random() < 0.25)
            yes = planted.get((d, q), yes)
            journal.append(
                cyc
                | {
                    "Question text": q,
                    "Answered yes": str(yes).lower(),
                    "Notes": "late dinner" if yes and rng.random() < 0.3 else "",
                }
            )
    return [
        _write(out_dir / "physiological_cycles.csv", CYCLES_HEADER, cycles),
        _write(out_dir / "sleeps.csv", SLEEPS_HEADER, sleeps),
        _write(out_dir / "workouts.csv", WORKOUTS_HEADER, wrows),
        _write(out_dir / "journal_entries.csv", JOURNAL_HEADER, journal),
    ]
