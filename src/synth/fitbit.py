"""Fitbit account-export JSON ("user-site-export") for a simulated person.

Files, as Fitbit writes them (Jackson pretty-printing, ``"key" : value``):

- ``sleep-YYYY-MM-DD.json`` (one per 30 days): stage logs with ``levels.data`` runs and
  ``levels.shortData`` wakes under 3 min overlaid on them (the long runs continue underneath, as
  Fitbit does), ``minutesToFallAsleep`` 0 like most real logs, local clock times without offset.
- ``heart_rate-YYYY-MM-DD.json`` (one per UTC day): ``MM/DD/YY HH:MM:SS`` in **UTC**, ~every 15 s.
- ``resting_heart_rate-YYYY-MM-DD.json`` (one file): one entry per local day.
- ``steps-YYYY-MM-DD.json`` (one per 30 days): every local minute, value as a string.
- Takeout CSVs ``Respiratory Rate Summary - …``, ``Daily SpO2 - …``, ``Computed Temperature - …``
  (one file each): the planted breathing rate, SpO2 and skin temperature of every night.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tunewell.synth.people import Person, Population
from tunewell.synth.zones import epoch_s, offsets_min, user_settings

SHORT_WAKE_S = 180
LEVEL = {"awake": "wake", "light": "light", "deep": "deep", "rem": "rem"}


def _local_str(utc_s: np.ndarray, off_min: np.ndarray, fmt: str) -> pl.Series:
    local = pl.Series(np.asarray(utc_s, dtype=np.int64) + 60 * np.asarray(off_min, dtype=np.int64))
    return pl.from_epoch(local, time_unit="s").dt.strftime(fmt)


def _iso(dt_s: int, off_min: int) -> str:
    t = datetime.fromtimestamp(dt_s + 60 * off_min, tz=UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000")


def _fmt(template: str, *cols: str) -> pl.Expr:
    """``template`` with ``{}`` holes filled by columns (JSON braces make pl.format unusable)."""
    pieces = template.split("{}")
    exprs: list[pl.Expr] = []
    for lit, col in zip(pieces, [*cols, None], strict=True):
        exprs.append(pl.lit(lit))
        if col is not None:
            exprs.append(pl.col(col).cast(pl.String))
    return pl.concat_str(exprs)


def _write_array(path: Path, items: pl.Series) -> None:
    """A JSON array of pre-formatted objects, written in chunks."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for off in range(0, len(items), 50_000):
            if off:
                fh.write(",")
            fh.write(",".join(items.slice(off, 50_000).to_list()))
        fh.write("]")


def _sleep_logs(pop: Population, person: Person) -> list[tuple[date, dict]]:
    user = user_settings(pop, person)
    uid = person.user_id
    nights = pop.nights.filter(pl.col("user_id") == uid).sort("bed_utc")
    stages = pop.stages.filter(pl.col("user_id") == uid).sort("start_utc")
    logs = []
    for row in nights.iter_rows(named=True):
        st = stages.filter(pl.col("sleep_date") == row["sleep_date"])
        s, e = epoch_s(st["start_utc"]), epoch_s(st["end_utc"])
        lv = [LEVEL[x] for x in st["stage"].to_list()]
        bed, out = int(s[0]), int(e[-1])
        off = int(offsets_min(user, np.array([bed]))[0])
        data: list[dict] = []
        short: list[dict] = []
        for a, b, level in zip(s.tolist(), e.tolist(), lv, strict=True):
            inner = a != bed and b != out
            if level == "wake" and inner and b - a < SHORT_WAKE_S and data:
                short.append({"dateTime": _iso(a, off), "level": "wake", "seconds": b - a})
                data[-1]["seconds"] += b - a  # the long run continues under the short wake
                continue
            if data and data[-1]["level"] == level:
                data[-1]["seconds"] += b - a
                continue
            data.append({"dateTime": _iso(a, off), "level": level, "seconds": b - a})
        # Minutes from the truth: overlaid short wakes are taken out of the stage underneath.
        secs = {name: 0 for name in LEVEL.values()}
        for a, b, level in zip(s.tolist(), e.tolist(), lv, strict=True):
            secs[level] += b - a
        summary = {
            name: {
                "count": sum(d["level"] == name for d in data)
                + (len(short) if name == "wake" else 0),
                "minutes": round(secs[name] / 60),
                "thirtyDayAvgMinutes": 0,
            }
            for name in ("deep", "wake", "light", "rem")
        }
        asleep = (
            summary["deep"]["minutes"] + summary["light"]["minutes"] + summary["rem"]["minutes"]
        )
        tib = round((out - bed) / 60)
        log_id = 20_000_000_000 + zlib.crc32(f"{uid}/{bed}".encode()) % 9_000_000_000
        logs.append(
            (
                row["sleep_date"],
                {
                    "logId": log_id,
                    "dateOfSleep": row["sleep_date"].isoformat(),
                    "startTime": _iso(bed, off),
                    "endTime": _iso(out, off),
                    "duration": (out - bed) * 1000,
                    "minutesToFallAsleep": 0,
                    "minutesAsleep": asleep,
                    "minutesAwake": tib - asleep,
                    "minutesAfterWakeup": 0,
                    "timeInBed": tib,
                    "efficiency": round(100 * asleep / max(tib, 1)),
                    "type": "stages",
                    "infoCode": 0,
                    "levels": {"summary": summary, "data": data, "shortData": short},
                    "mainSleep": True,
                },
            )
        )
    return logs


def write_fitbit(pop: Population, person: Person, out_dir: Path, seed: int = 0) -> list[Path]:
    """Write the person's Fitbit JSON files into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib.crc32(person.user_id.encode()), 3])
    user = user_settings(pop, person)
    uid = person.user_id
    written: list[Path] = []

    logs = _sleep_logs(pop, person)
    if logs:
        first = logs[0][0]
        chunks: dict[date, list[dict]] = {}
        for d, log in logs:
            key = first + timedelta(days=30 * ((d - first).days // 30))
            chunks.setdefault(key, []).append(log)
        for key, items in chunks.items():
            path = out_dir / f"sleep-{key.isoformat()}.json"
            # Fitbit lists the newest log first.
            path.write_text(json.dumps(items[::-1], indent=2, separators=(",", " : ")))
            written.append(path)

    minutes = pop.minutes.filter(pl.col("user_id") == uid).sort("start_utc")
    t = epoch_s(minutes["start_utc"])
    hr = minutes["hr"].to_numpy()
    off = offsets_min(user, t)

    # Heart rate: ~4 samples a minute, UTC clock, one file per UTC day.
    ts = (
        np.repeat(t, 4)
        + np.tile(np.array([0, 15, 30, 45]), len(t))
        + rng.integers(0, 5, 4 * len(t))
    )
    bpm = np.round(np.repeat(hr, 4) + rng.normal(0, 1.5, 4 * len(t))).astype(int)
    conf = np.where(rng.random(len(ts)) < 0.8, 3, 2)
    hr_df = pl.DataFrame(
        {
            "day": pl.from_epoch(pl.Series(ts), time_unit="s").dt.date(),
            "dt": pl.from_epoch(pl.Series(ts), time_unit="s").dt.strftime("%m/%d/%y %H:%M:%S"),
            "bpm": bpm,
            "conf": conf,
        }
    ).with_columns(
        _fmt(
            '{\n  "dateTime" : "{}",\n  "value" : {\n    "bpm" : {},\n'
            '    "confidence" : {}\n  }\n}',
            "dt",
            "bpm",
            "conf",
        ).alias("item")
    )
    for (day,), part in hr_df.group_by("day", maintain_order=True):
        path = out_dir / f"heart_rate-{day.isoformat()}.json"
        _write_array(path, part["item"])
        written.append(path)

    # Steps: every local minute, value as a string, one file per 30 local days.
    local = _local_str(t, off, "%m/%d/%y %H:%M:%S")
    local_day = pl.from_epoch(pl.Series(t + 60 * off), time_unit="s").dt.date()
    steps_df = pl.DataFrame(
        {"day": local_day, "dt": local, "v": minutes["steps"].cast(pl.String)}
    ).with_columns(_fmt('{\n  "dateTime" : "{}",\n  "value" : "{}"\n}', "dt", "v").alias("item"))
    first_day = steps_df["day"][0]
    steps_df = steps_df.with_columns(
        ((pl.col("day") - pl.lit(first_day)).dt.total_days() // 30).alias("chunk")
    )
    for (chunk,), part in steps_df.group_by("chunk", maintain_order=True):
        key = first_day + timedelta(days=30 * int(chunk))
        path = out_dir / f"steps-{key.isoformat()}.json"
        _write_array(path, part["item"])
        written.append(path)

    nights = pop.nights.filter(pl.col("user_id") == uid).sort("sleep_date")
    if len(nights):
        days_txt = nights["sleep_date"].dt.strftime("%m/%d/%y")
        err = np.round(rng.uniform(3, 9, len(nights)), 6)
        rhr = pl.DataFrame({"d": days_txt, "v": nights["rhr_bpm"], "e": err}).with_columns(
            _fmt(
                '{\n  "dateTime" : "{} 00:00:00",\n  "value" : {\n    "date" : "{}",\n'
                '    "value" : {},\n    "error" : {}\n  }\n}',
                "d",
                "d",
                "v",
                "e",
            ).alias("item")
        )
        path = out_dir / f"resting_heart_rate-{nights['sleep_date'][0].isoformat()}.json"
        _write_array(path, rhr["item"])
        written.append(path)
        written += _vitals_csvs(nights, user, out_dir)
    return written


BASELINE_NIGHTS = 3  # Fitbit reports temperature relative to a baseline only after a few nights


def _vitals_csvs(nights: pl.DataFrame, user, out_dir: Path) -> list[Path]:
    """The Takeout's nightly vitals CSVs: breathing rate (at the sleep's local end), daily SpO2
    (dated by the wake-up day, ``Z`` on a local midnight as some exports write it) and computed
    temperature (absolute plus the sum of deviations from Fitbit's baseline)."""
    onset, wake = epoch_s(nights["onset_utc"]), epoch_s(nights["wake_utc"])
    on_s = _local_str(onset, offsets_min(user, onset), "%Y-%m-%dT%H:%M:%S")
    wk_s = _local_str(wake, offsets_min(user, wake), "%Y-%m-%dT%H:%M:%S")
    days = nights["sleep_date"].dt.strftime("%Y-%m-%d")
    key = nights["sleep_date"][0].isoformat()
    br = nights["resp_rate"].round(1)
    n = ((wake - onset) // 60 * 0.85).astype(int)
    dev = nights["skin_temp_dev"].to_numpy()
    rel = np.where(np.arange(len(n)) < BASELINE_NIGHTS, np.nan, dev * n)
    files = {
        f"Respiratory Rate Summary - {key}.csv": pl.DataFrame(
            {
                "timestamp": wk_s,
                "full_sleep_breathing_rate": br,
                "full_sleep_standard_deviation": 1.1,
                "full_sleep_signal_to_noise": 8.5,
                "deep_sleep_breathing_rate": (br - 0.6).round(1),
                "deep_sleep_standard_deviation": 0.6,
                "deep_sleep_signal_to_noise": 12.0,
                "light_sleep_breathing_rate": br,
                "light_sleep_standard_deviation": 1.0,
                "light_sleep_signal_to_noise": 9.0,
                "rem_sleep_breathing_rate": (br + 0.5).round(1),
                "rem_sleep_standard_deviation": 1.4,
                "rem_sleep_signal_to_noise": 6.0,
            }
        ),
        f"Daily SpO2 - {key}.csv": pl.DataFrame(
            {
                "timestamp": days + "T00:00:00Z",
                "average_value": nights["spo2_pct"].round(1),
                "lower_bound": (nights["spo2_pct"] - 3.2).round(1),
                "upper_bound": (nights["spo2_pct"] + 2).clip(upper_bound=100).round(1),
            }
        ),
        f"Computed Temperature - {key}.csv": pl.DataFrame(
            {
                "type": "SLEEP",
                "sleep_start": on_s,
                "sleep_end": wk_s,
                "temperature_samples": n,
                "nightly_temperature": nights["skin_temp_c"].round(4),
                "baseline_relative_sample_sum": np.round(rel, 4),
                "baseline_relative_sample_sum_of_squares": np.round(rel * rel / n + 0.01 * n, 4),
                "baseline_relative_nightly_standard_deviation": 0.28,
                "baseline_relative_sample_standard_deviation": 0.95,
            }
        ),
    }
    out = []
    for name, df in files.items():
        path = out_dir / name
        df.write_csv(path, null_value="NaN")
        out.append(path)
    return out
