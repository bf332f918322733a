"""Write a simulated person's nights as Oura exports: API v2 endpoint files or the v1 cloud export.

Values come from the Population truth so tests can check what survives the format: 5-minute HRV
items are the truth windows re-gridded onto Oura's grid (which starts at ``bedtime_start``, not at
sleep onset), with a few nulls like real artefact windows; phases are the truth stage at each
epoch's midpoint. Scores are plausible functions of the truth, only kept for comparison.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from tunewell.synth.people import Population

EPOCH_S = 300
_PHASE_CODE = {"deep": "1", "light": "2", "rem": "3", "awake": "4"}
_V2_SLEEP_CONTRIB = (
    "deep_sleep",
    "efficiency",
    "latency",
    "rem_sleep",
    "restfulness",
    "timing",
    "total_sleep",
)
_V2_READY_CONTRIB = (
    "activity_balance",
    "body_temperature",
    "hrv_balance",
    "previous_day_activity",
    "previous_night",
    "recovery_index",
    "resting_heart_rate",
    "sleep_balance",
)
_V1_SLEEP = dict(
    zip(
        (
            "score_deep",
            "score_efficiency",
            "score_latency",
            "score_rem",
            "score_disturbances",
            "score_alignment",
            "score_total",
        ),
        _V2_SLEEP_CONTRIB,
        strict=True,
    )
)
_V1_READY = dict(
    zip(
        (
            "score_activity_balance",
            "score_temperature",
            "score_hrv_balance",
            "score_previous_day",
            "score_previous_night",
            "score_recovery_index",
            "score_resting_hr",
            "score_sleep_balance",
        ),
        _V2_READY_CONTRIB,
        strict=True,
    )
)


def _iso(t: datetime, tz: str) -> str:
    return t.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _epoch_s(col: pl.Series) -> np.ndarray:
    return col.dt.epoch("s").to_numpy()


def _night_arrays(pop: Population, user_id: str, seed: int) -> list[dict]:
    """Per night: the grids Oura reports (phases, 5-min HR and HRV) from the truth."""
    nights = pop.nights.filter(pl.col("user_id") == user_id).sort("bed_utc")
    stages = pop.stages.filter(pl.col("user_id") == user_id).sort("start_utc")
    hrv5 = pop.hrv5.filter(pl.col("user_id") == user_id).sort("start_utc")
    mins = pop.minutes.filter(pl.col("user_id") == user_id).sort("start_utc")
    st_s, st_e = _epoch_s(stages["start_utc"]), _epoch_s(stages["end_utc"])
    st_code = np.array([_PHASE_CODE[s] for s in stages["stage"]])
    h_s, h_v = _epoch_s(hrv5["start_utc"]), hrv5["rmssd_ms"].to_numpy()
    m_s, m_hr = _epoch_s(mins["start_utc"]), mins["hr"].to_numpy()
    rng = np.random.default_rng([seed, int(hashlib.sha1(user_id.encode()).hexdigest()[:8], 16)])
    out = []
    for row in nights.iter_rows(named=True):
        bed, end = int(row["bed_utc"].timestamp()), int(row["out_utc"].timestamp())
        n = -(-(end - bed) // EPOCH_S)
        mids = bed + EPOCH_S * np.arange(n) + EPOCH_S // 2
        j = np.clip(np.searchsorted(st_s, mids, side="right") - 1, 0, None)
        phases = "".join(np.where(mids < st_e[j], st_code[j], "4"))
        k = np.searchsorted(h_s, mids, side="right") - 1
        ok = (k >= 0) & (mids - h_s[np.clip(k, 0, None)] < EPOCH_S)
        hrv = np.where(ok & (rng.random(n) > 0.04), h_v[np.clip(k, 0, None)], np.nan)
        w = (m_s >= bed) & (m_s < bed + n * EPOCH_S)
        idx = (m_s[w] - bed) // EPOCH_S
        sums = np.bincount(idx, weights=m_hr[w], minlength=n)
        cnt = np.bincount(idx, minlength=n)
        hr = np.where(cnt > 0, np.round(sums / np.maximum(cnt, 1)), np.nan)
        out.append(
            row
            | {
                "phases": phases,
                "hrv": hrv,
                "hr": hr,
                "temp_dev": round(float(row["skin_temp_dev"]), 2),
            }
        )
    return out


def _items(a: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 1) for v in a]


def _summary(n: dict) -> dict:
    tib = int((n["out_utc"] - n["bed_utc"]).total_seconds())
    tst = round(n["tst_min"] * 60)
    counts = {c: n["phases"].count(c) * EPOCH_S for c in "1234"}
    eff = round(100 * tst / tib)
    sleep_score = int(np.clip(35 + n["tst_min"] / 480 * 45 + (eff - 85) * 0.6, 30, 99))
    ready = int(
        np.clip(75 + 60 * (np.log(n["rmssd_ms"]) - 4.0) - 1.5 * (n["rhr_bpm"] - 55), 20, 99)
    )
    return {
        "tib": tib,
        "tst": tst,
        "counts": counts,
        "eff": eff,
        "sleep_score": sleep_score,
        "ready": ready,
        "latency": int((n["onset_utc"] - n["bed_utc"]).total_seconds()),
    }


def _contrib(names: tuple[str, ...], base: int) -> dict[str, int]:
    return {k: int(np.clip(base + 7 * ((i * 37) % 5 - 2), 1, 100)) for i, k in enumerate(names)}


def _doc_id(user_id: str, kind: str, day: date) -> str:
    h = hashlib.sha1(f"{user_id}/{kind}/{day}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _daily_steps(pop: Population, user_id: str, nights: list[dict]) -> dict[date, int]:
    mins = pop.minutes.filter(pl.col("user_id") == user_id).sort("start_utc")
    m_s, steps = _epoch_s(mins["start_utc"]), mins["steps"].to_numpy()
    cum = np.concatenate([[0], np.cumsum(steps)])
    out = {}
    for n in nights:
        d, tz = n["sleep_date"], ZoneInfo(n["tz"])
        lo = int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
        hi = int((datetime(d.year, d.month, d.day, tzinfo=tz) + timedelta(days=1)).timestamp())
        out[d] = int(cum[np.searchsorted(m_s, hi)] - cum[np.searchsorted(m_s, lo)])
    return out


def _v2(pop: Population, user_id: str, nights: list[dict]) -> dict[str, list[dict]]:
    steps = _daily_steps(pop, user_id, nights)
    docs: dict[str, list[dict]] = {
        "sleep": [],
        "daily_sleep": [],
        "daily_readiness": [],
        "daily_activity": [],
        "daily_spo2": [],
    }
    for n in nights:
        s, d, tz = _summary(n), n["sleep_date"], n["tz"]
        start = _iso(n["bed_utc"], tz)
        midnight = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).isoformat()
        ready = {
            "contributors": _contrib(_V2_READY_CONTRIB, s["ready"]),
            "score": s["ready"],
            "temperature_deviation": n["temp_dev"],
            "temperature_trend_deviation": 0.0,
        }
        hr_items = _items(n["hr"])
        docs["sleep"].append(
            {
                "id": _doc_id(user_id, "sleep", d),
                "average_breath": round(float(n["resp_rate"]), 3),
                "average_heart_rate": round(float(np.nanmean(n["hr"])), 3),
                "average_hrv": round(n["rmssd_ms"]),
                "awake_time": s["counts"]["4"],
                "bedtime_end": _iso(n["out_utc"], tz),
                "bedtime_start": start,
                "day": d.isoformat(),
                "deep_sleep_duration": s["counts"]["1"],
                "efficiency": s["eff"],
                "heart_rate": {"interval": 300.0, "items": hr_items, "timestamp": start},
                "hrv": {"interval": 300.0, "items": _items(n["hrv"]), "timestamp": start},
                "latency": s["latency"],
                "light_sleep_duration": s["counts"]["2"],
                "low_battery_alert": False,
                "lowest_heart_rate": round(n["lowest_hr"]),
                "movement_30_sec": None,
                "period": 0,
                "readiness": ready,
                "readiness_score_delta": 0,
                "rem_sleep_duration": s["counts"]["3"],
                "restless_periods": 120,
                "sleep_phase_5_min": n["phases"],
                "sleep_score_delta": 0,
                "sleep_algorithm_version": "v2",
                "time_in_bed": s["tib"],
                "total_sleep_duration": s["tst"],
                "type": "long_sleep",
            }
        )
        docs["daily_sleep"].append(
            {
                "id": _doc_id(user_id, "daily_sleep", d),
                "contributors": _contrib(_V2_SLEEP_CONTRIB, s["sleep_score"]),
                "day": d.isoformat(),
                "score": s["sleep_score"],
                "timestamp": midnight,
            }
        )
        docs["daily_readiness"].append(
            {
                "id": _doc_id(user_id, "daily_readiness", d),
                "day": d.isoformat(),
                "timestamp": midnight,
            }
            | ready
        )
        docs["daily_spo2"].append(
            {
                "id": _doc_id(user_id, "daily_spo2", d),
                "breathing_disturbance_index": 4,
                "day": d.isoformat(),
                "spo2_percentage": {"average": round(float(n["spo2_pct"]), 3)},
            }
        )
        docs["daily_activity"].append(
            {
                "id": _doc_id(user_id, "daily_activity", d),
                "day": d.isoformat(),
                "score": int(np.clip(60 + steps[d] / 500, 30, 99)),
                "steps": steps[d],
                "class_5_min": None,
                "timestamp": midnight,
            }
        )
    return docs


def _v1(nights: list[dict], steps: dict[date, int]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"sleep": [], "activity": [], "readiness": []}
    for n in nights:
        s, d, tz = _summary(n), n["sleep_date"], n["tz"]
        prev = (d - timedelta(days=1)).isoformat()
        off = int(n["bed_utc"].astimezone(ZoneInfo(tz)).utcoffset().total_seconds() // 60)
        sc = _contrib(_V2_SLEEP_CONTRIB, s["sleep_score"])
        rc = _contrib(_V2_READY_CONTRIB, s["ready"])
        out["sleep"].append(
            {
                "summary_date": prev,
                "period_id": 0,
                "is_longest": 1,
                "timezone": off,
                "bedtime_start": _iso(n["bed_utc"], tz),
                "bedtime_end": _iso(n["out_utc"], tz),
                "score": s["sleep_score"],
                **{v1: sc[v2] for v1, v2 in _V1_SLEEP.items()},
                "total": s["tst"],
                "duration": s["tib"],
                "awake": s["counts"]["4"],
                "light": s["counts"]["2"],
                "rem": s["counts"]["3"],
                "deep": s["counts"]["1"],
                "onset_latency": s["latency"],
                "restless": 30,
                "efficiency": s["eff"],
                "midpoint_time": s["tib"] // 2,
                "hr_lowest": round(n["lowest_hr"]),
                "hr_average": round(float(np.nanmean(n["hr"])), 2),
                "rmssd": round(n["rmssd_ms"]),
                "breath_average": round(float(n["resp_rate"]), 3),
                "temperature_delta": n["temp_dev"],
                "hypnogram_5min": n["phases"],
                "hr_5min": [0 if v is None else round(v) for v in _items(n["hr"])],
                "rmssd_5min": [0 if v is None else round(v) for v in _items(n["hrv"])],
            }
        )
        out["readiness"].append(
            {
                "summary_date": prev,
                "period_id": 0,
                "score": s["ready"],
                **{v1: rc[v2] for v1, v2 in _V1_READY.items()},
            }
        )
        out["activity"].append(
            {
                "summary_date": d.isoformat(),
                "timezone": off,
                "score": int(np.clip(60 + steps[d] / 500, 30, 99)),
                "steps": steps[d],
            }
        )
    return out


def write_oura(
    pop: Population, user_id: str, out_dir: Path, *, style: str = "v2", seed: int = 0
) -> list[Path]:
    """Write ``user_id``'s Oura data; ``style`` "v2" (one file per endpoint) or "v1" (one file)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nights = _night_arrays(pop, user_id, seed)
    if style == "v1":
        body = _v1(nights, _daily_steps(pop, user_id, nights))
        path = out_dir / f"oura_data_{user_id}.json"
        path.write_text(json.dumps([body], indent=1))
        return [path]
    if style != "v2":
        raise ValueError(f"unknown Oura export style {style!r}; use 'v2' or 'v1'")
    paths = []
    for endpoint, data in _v2(pop, user_id, nights).items():
        path = out_dir / f"oura_{user_id}_{endpoint}.json"
        path.write_text(json.dumps({"data": data, "next_token": None}, indent=1))
        paths.append(path)
    return paths
