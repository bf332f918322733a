"""Garmin FIT files for a simulated person, written with the official ``garmin_fit_sdk`` Encoder.

What a Garmin Connect export holds, and what the FIT reader must therefore cope with:

- ``<id>_SLEEP_DATA.fit`` (file type 49, one per night): ``timestamp_correlation`` (local
  offset), ``event`` timer start/stop at into/out of bed, ``sleep_level`` at every stage change
  (the level lasts until the next message or the stop event), one ``sleep_assessment``, one
  ``skin_temp_overnight`` (the night's deviation) at out of bed.
- ``<id>_HRV_STATUS.fit`` (file type 68, one per night): ``timestamp_correlation``, one
  ``hrv_value`` (5-min RMSSD, ms, 1/128 resolution) per window of the main sleep, one
  ``hrv_status_summary`` (Garmin's last-night *mean*; weekly mean; baseline after 3 weeks).
- ``<id>_WELLNESS.fit`` (file type 32 monitoring_b, one per local day): ``monitoring_info`` with
  the local midnight (``local_timestamp`` - ``timestamp`` = offset); every 15 min a ``monitoring``
  message with a full ``timestamp`` and ``cycles`` = *cumulative since local midnight* per
  ``activity_type`` (walking/running; decodes as ``steps``), ``active_time`` and ``intensity``;
  one ``monitoring`` per minute with ``heart_rate`` and only ``timestamp_16`` (expand from the last
  full timestamp), except every 15th which carries a full ``timestamp``; ``monitoring_hr_data``
  with the day's resting HR at the end; every 10 min a ``respiration_rate`` (all day: faster
  awake) and, asleep, a ``spo2_data`` pulse-ox reading.
- ``<id>_ACTIVITY.fit`` (file type 4, one per workout): ``record`` every 4 s (heart_rate, distance,
  speed, cadence), ``hrv`` messages with up to 5 RR intervals in seconds (65.535 pads), ``lap``,
  ``session`` (``workout_rpe`` = RPE x 10 as Garmin Connect stores it) and ``activity`` with
  ``local_timestamp``.
"""

from __future__ import annotations

import zlib
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from garmin_fit_sdk import Encoder, Profile

from tunewell.settings import UserSettings
from tunewell.synth.people import Person, Population
from tunewell.synth.zones import epoch_s, offsets_min, user_settings

FIT_EPOCH_S = 631065600
M = Profile["mesg_num"]
FILE_ACTIVITY, FILE_MONITORING_B, FILE_SLEEP, FILE_HRV_STATUS = 4, 32, 49, 68
PRODUCT_FENIX7 = 3906
RECORD_EVERY_S = 4  # within Garmin "smart recording" spacing (1-7 s); keeps big corpora quick
SPORT = {"running": "running", "cycling": "cycling", "walking": "walking", "strength": "training"}


def _fit(unix_s: int | np.integer) -> int:
    return int(unix_s) - FIT_EPOCH_S


def _serial(user_id: str) -> int:
    return 3_000_000_000 + zlib.crc32(user_id.encode()) % 900_000_000


def _encoder(file_type: int, user_id: str, created_unix: int) -> Encoder:
    enc = Encoder()
    enc.write_mesg(
        {
            "mesg_num": M["FILE_ID"],
            "type": file_type,
            "manufacturer": "garmin",
            "product": PRODUCT_FENIX7,
            "serial_number": _serial(user_id),
            "time_created": _fit(created_unix),
        }
    )
    return enc


def _correlation(enc: Encoder, unix_s: int, offset_min: int) -> None:
    enc.write_mesg(
        {
            "mesg_num": M["TIMESTAMP_CORRELATION"],
            "timestamp": _fit(unix_s),
            "system_timestamp": _fit(unix_s),
            "local_timestamp": _fit(unix_s) + 60 * offset_min,
        }
    )


def _file_id(kind: str, user_id: str, key: int) -> int:
    """Stable numeric id like Garmin Connect's (so repeated runs give identical names)."""
    return 10_000_000_000 + (zlib.crc32(f"{user_id}/{kind}/{key}".encode()) % 9_000_000_000)


def _sleep_file(
    user: UserSettings,
    night: dict,
    stages: pl.DataFrame,
    hrv5: pl.DataFrame,
    temp: tuple[float, float] | None = None,
) -> bytes:
    """One night; ``temp`` = (deviation, absolute °C) for the ``skin_temp_overnight`` message."""
    bed, out = night["bed"], night["out"]
    off = int(offsets_min(user, np.array([bed]))[0])
    enc = _encoder(FILE_SLEEP, user.user_id, out)
    _correlation(enc, bed, off)
    enc.write_mesg(
        {"mesg_num": M["EVENT"], "timestamp": _fit(bed), "event": "timer", "event_type": "start"}
    )
    st = epoch_s(stages["start_utc"])
    for t, level in zip(st, stages["stage"].to_list(), strict=True):
        enc.write_mesg({"mesg_num": M["SLEEP_LEVEL"], "timestamp": _fit(t), "sleep_level": level})
    dur = (epoch_s(stages["end_utc"]) - st) / 60.0
    names = stages["stage"].to_numpy()
    deep = float(dur[names == "deep"].sum())
    rem = float(dur[names == "rem"].sum())
    light = float(dur[names == "light"].sum())
    tst = deep + rem + light
    # Awakenings after onset (not the SOL or the final out-of-bed wake).
    mid_awake = (names == "awake") & (st > st[0]) & (epoch_s(stages["end_utc"]) < out)
    awakenings = int(mid_awake.sum())
    dur_score = float(np.clip(100 - abs(tst - 480) / 3.0, 20, 100))
    deep_score = float(np.clip(50 + (deep / max(tst, 1) - 0.13) * 400, 10, 100))
    rem_score = float(np.clip(50 + (rem / max(tst, 1) - 0.2) * 300, 10, 100))
    awake_score = float(np.clip(100 - 8 * awakenings, 10, 100))
    overall = round(0.4 * dur_score + 0.2 * deep_score + 0.2 * rem_score + 0.2 * awake_score)
    rmssd = hrv5["rmssd_ms"].to_numpy()
    stress = float(np.clip(60 - float(np.mean(rmssd)) * 0.6, 5, 60)) if len(rmssd) else 25.0
    enc.write_mesg(
        {
            "mesg_num": M["SLEEP_ASSESSMENT"],
            "overall_sleep_score": overall,
            "sleep_quality_score": round(0.5 * deep_score + 0.5 * rem_score),
            "sleep_duration_score": round(dur_score),
            "deep_sleep_score": round(deep_score),
            "light_sleep_score": round(
                np.clip(100 - abs(light / max(tst, 1) - 0.55) * 200, 10, 100)
            ),
            "rem_sleep_score": round(rem_score),
            "awakenings_count": awakenings,
            "awakenings_count_score": round(awake_score),
            "average_stress_during_sleep": round(stress, 2),
        }
    )
    if temp is not None:
        enc.write_mesg(
            {
                "mesg_num": M["SKIN_TEMP_OVERNIGHT"],
                "timestamp": _fit(out),
                "local_timestamp": _fit(out) + 60 * off,
                "average_deviation": float(temp[0]),
                "average_7_day_deviation": 0.0,
                "nightly_value": float(temp[1]),
            }
        )
    enc.write_mesg(
        {"mesg_num": M["EVENT"], "timestamp": _fit(out), "event": "timer", "event_type": "stop"}
    )
    return enc.close()


def _hrv_file(user: UserSettings, wake: int, hrv5: pl.DataFrame, history: list[float]) -> bytes:
    """HRV-status file; ``history`` = previous last-night averages (for weekly mean/baseline)."""
    off = int(offsets_min(user, np.array([wake]))[0])
    enc = _encoder(FILE_HRV_STATUS, user.user_id, wake)
    _correlation(enc, wake, off)
    t = epoch_s(hrv5["start_utc"])
    v = hrv5["rmssd_ms"].to_numpy()
    for ts, val in zip(t, v, strict=True):
        enc.write_mesg({"mesg_num": M["HRV_VALUE"], "timestamp": _fit(ts), "value": float(val)})
    last = float(np.mean(v))
    week = [*history[-6:], last]
    summary: dict = {
        "mesg_num": M["HRV_STATUS_SUMMARY"],
        "timestamp": _fit(wake),
        "last_night_average": round(last, 1),
        "last_night_5_min_high": float(v.max()),
        "weekly_average": round(float(np.mean(week)), 1),
        "status": "none",
    }
    if len(history) >= 21:
        ln = np.log(np.array(history[-21:]))
        mu, sd = float(ln.mean()), float(ln.std(ddof=1))
        low, hi = float(np.exp(mu - 0.5 * sd)), float(np.exp(mu + 0.5 * sd))
        wk = float(np.mean(week))
        summary |= {
            "baseline_low_upper": round(float(np.exp(mu - 1.5 * sd)), 1),
            "baseline_balanced_lower": round(low, 1),
            "baseline_balanced_upper": round(hi, 1),
            "status": "balanced" if low <= wk <= hi else ("low" if wk < low else "unbalanced"),
        }
    enc.write_mesg(summary)
    return enc.close()


def _wellness_file(
    user: UserSettings,
    t: np.ndarray,
    off: np.ndarray,
    steps: np.ndarray,
    hr: np.ndarray,
    running: np.ndarray,
    rhr: float | None,
    resp: np.ndarray | None = None,
    spo2: np.ndarray | None = None,
) -> bytes:
    """One local day of monitoring; ``t`` are minute starts (epoch s) inside that local day.

    ``resp`` (breaths/min, all day) and ``spo2`` (%, NaN outside sleep) per minute: written every
    10 minutes as ``respiration_rate`` and ``spo2_data`` messages, as a watch with all-day
    respiration and sleep-time pulse ox does."""
    day_start = int(t[0] - (t[0] + 60 * off[0]) % 86400)  # UTC instant of local midnight
    enc = _encoder(FILE_MONITORING_B, user.user_id, day_start)
    enc.write_mesg(
        {
            "mesg_num": M["MONITORING_INFO"],
            "timestamp": _fit(day_start),
            "local_timestamp": _fit(day_start) + 60 * int(off[0]),
            "activity_type": ["walking", "running"],
            "cycles_to_distance": [0.74, 1.05],
            "cycles_to_calories": [0.0438, 0.1186],
            "resting_metabolic_rate": 1750,
        }
    )
    walk_cum = 0
    run_cum = 0
    active_s = 0
    n = len(t)
    for i in range(n):
        ts = int(t[i])
        # Every 15th HR sample carries the full timestamp, the others only its low 16 bits.
        stamp = {"timestamp": _fit(ts)} if i % 15 == 0 else {"timestamp_16": _fit(ts) & 0xFFFF}
        enc.write_mesg({"mesg_num": M["MONITORING"], **stamp, "heart_rate": round(float(hr[i]))})
        if ts % 600 == 0 and resp is not None and not np.isnan(resp[i]):
            rate = round(float(resp[i]), 2)
            enc.write_mesg(
                {"mesg_num": M["RESPIRATION_RATE"], "timestamp": _fit(ts), "respiration_rate": rate}
            )
        if ts % 600 == 0 and spo2 is not None and not np.isnan(spo2[i]):
            enc.write_mesg(
                {
                    "mesg_num": M["SPO2_DATA"],
                    "timestamp": _fit(ts),
                    "reading_spo2": round(float(spo2[i])),
                    "reading_confidence": 90,
                    "mode": "continuous_check",
                }
            )
        if (i + 1) % 15 and i != n - 1:
            continue
        block = slice(i - i % 15, i + 1)
        s_walk = int(steps[block][~running[block]].sum())
        s_run = int(steps[block][running[block]].sum())
        active_s += 60 * int((steps[block] > 0).sum())
        end = _fit(ts + 60)
        if s_walk == 0 and s_run == 0:
            enc.write_mesg(
                {
                    "mesg_num": M["MONITORING"],
                    "timestamp": end,
                    "activity_type": "sedentary",
                    "intensity": 0,
                }
            )
        for kind, s in (("walking", s_walk), ("running", s_run)):
            if s == 0:
                continue
            if kind == "walking":
                walk_cum += s
                cum = walk_cum
            else:
                run_cum += s
                cum = run_cum
            enc.write_mesg(
                {
                    "mesg_num": M["MONITORING"],
                    "timestamp": end,
                    "activity_type": kind,
                    "cycles": cum / 2.0,  # decodes as steps = 2 x cycles
                    "active_time": float(active_s),
                    "intensity": 4 if kind == "running" else 2,
                }
            )
    if rhr is not None:
        enc.write_mesg(
            {
                "mesg_num": M["MONITORING_HR_DATA"],
                "timestamp": _fit(int(t[-1]) + 60),
                "resting_heart_rate": round(rhr),
                "current_day_resting_heart_rate": round(rhr),
            }
        )
    return enc.close()


def _rr_seconds(rng: np.random.Generator, hr_per_s: np.ndarray) -> np.ndarray:
    """Beat-to-beat intervals (s) following a per-second HR curve, with rare missed beats."""
    cum_beats = np.concatenate([[0.0], np.cumsum(hr_per_s / 60.0)])
    k = np.arange(1, int(cum_beats[-1]))
    beat_t = np.interp(k, cum_beats, np.arange(len(cum_beats), dtype=float))
    rr = np.diff(beat_t) + rng.normal(0, 0.006, len(k) - 1)
    missed = rng.random(len(rr)) < 0.003
    rr = np.where(missed, rr * 2, rr)
    return np.round(np.clip(rr, 0.25, 2.5), 3)


def _activity_file(
    user: UserSettings, p: Person, w: dict, hr_min: np.ndarray, rng: np.random.Generator
) -> bytes:
    start, end = int(w["start_utc"]), int(w["end_utc"])
    dur = end - start
    off = int(offsets_min(user, np.array([end]))[0])
    secs = np.arange(dur)
    minute_hr = hr_min if len(hr_min) else np.array([w["avg_hr"]])
    hr_s = np.interp(secs / 60.0, np.arange(len(minute_hr)) + 0.5, minute_hr)
    hr_s = np.clip(hr_s + rng.normal(0, 1.5, dur), 50, p.hr_max)
    speed = {"running": 3.2, "cycling": 8.0, "walking": 1.4, "strength": 0.0}[w["activity"]]
    speed_s = np.clip(speed * (0.9 + 0.2 * (hr_s - hr_s.min()) / max(np.ptp(hr_s), 1)), 0, None)
    dist = np.cumsum(speed_s)
    cadence = {"running": 83, "cycling": 88, "walking": 55, "strength": 0}[w["activity"]]

    enc = _encoder(FILE_ACTIVITY, user.user_id, start)
    enc.write_mesg(
        {"mesg_num": M["EVENT"], "timestamp": _fit(start), "event": "timer", "event_type": "start"}
    )
    for i in range(0, dur, RECORD_EVERY_S):
        enc.write_mesg(
            {
                "mesg_num": M["RECORD"],
                "timestamp": _fit(start + i),
                "heart_rate": round(float(hr_s[i])),
                "distance": round(float(dist[i]), 2),
                "speed": round(float(speed_s[i]), 3),
                "cadence": cadence,
            }
        )
    rr = _rr_seconds(rng, hr_s)
    pad = (-len(rr)) % 5
    chunks = np.concatenate([rr, np.full(pad, 65.535)]).reshape(-1, 5)
    for row in chunks.tolist():
        enc.write_mesg({"mesg_num": M["HRV"], "time": row})
    enc.write_mesg(
        {"mesg_num": M["EVENT"], "timestamp": _fit(end), "event": "timer", "event_type": "stop_all"}
    )
    common = {
        "timestamp": _fit(end),
        "start_time": _fit(start),
        "total_elapsed_time": float(dur),
        "total_timer_time": float(dur),
        "total_distance": round(float(dist[-1]), 2),
        "avg_heart_rate": round(float(w["avg_hr"])),
        "max_heart_rate": round(float(w["max_hr"])),
        "sport": SPORT[w["activity"]],
        "sub_sport": "generic",
        "event": "lap",
        "event_type": "stop",
    }
    enc.write_mesg({"mesg_num": M["LAP"], **common, "lap_trigger": "session_end"})
    enc.write_mesg(
        {
            "mesg_num": M["SESSION"],
            **common,
            "trigger": "activity_end",
            "first_lap_index": 0,
            "num_laps": 1,
            "total_calories": round(dur / 60 * (6 + 8 * w["hard"])),
            "workout_rpe": int(w["rpe"]) * 10,
        }
    )
    enc.write_mesg(
        {
            "mesg_num": M["ACTIVITY"],
            "timestamp": _fit(end),
            "total_timer_time": float(dur),
            "num_sessions": 1,
            "type": "manual",
            "event": "activity",
            "event_type": "stop",
            "local_timestamp": _fit(end) + 60 * off,
        }
    )
    return enc.close()


DAY_RESP_ADD = 3.0  # awake breathing is faster than asleep: daytime samples must not count


def _minute_vitals(
    t: np.ndarray, nights: pl.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute respiration (all day; in bed = the night's planted rate) and SpO2 (in bed only).

    Minutes out of bed breathe at the next night's rate + ``DAY_RESP_ADD``."""
    onset, wake = epoch_s(nights["bed_utc"]), epoch_s(nights["out_utc"])
    rate, sat = nights["resp_rate"].to_numpy(), nights["spo2_pct"].to_numpy()
    if not len(onset):
        nan = np.full(len(t), np.nan)
        return nan, nan
    k = np.clip(np.searchsorted(onset, t, side="right") - 1, 0, None)
    asleep = (t >= onset[k]) & (t < wake[k])
    nxt = np.clip(np.searchsorted(onset, t, side="left"), 0, len(onset) - 1)
    noise = rng.normal(0, 0.4, len(t))
    resp = np.where(asleep, rate[k], rate[nxt] + DAY_RESP_ADD) + noise
    spo2 = np.where(asleep, np.clip(sat[k] + rng.normal(0, 0.8, len(t)), 85, 100), np.nan)
    return resp, spo2


def write_garmin(pop: Population, person: Person, out_dir: Path, seed: int = 0) -> list[Path]:
    """Write all FIT files of one person into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    user = user_settings(pop, person)
    uid = person.user_id
    rng = np.random.default_rng([seed, zlib.crc32(uid.encode())])
    written: list[Path] = []

    def emit(kind: str, key: int, data: bytes) -> None:
        path = out_dir / f"{_file_id(kind, uid, key)}_{kind}.fit"
        path.write_bytes(data)
        written.append(path)

    nights = pop.nights.filter(pl.col("user_id") == uid).sort("bed_utc")
    stages = pop.stages.filter(pl.col("user_id") == uid)
    hrv5 = pop.hrv5.filter(pl.col("user_id") == uid)
    history: list[float] = []
    for row in nights.iter_rows(named=True):
        d = row["sleep_date"]
        night = {k: int(row[f"{k}_utc"].timestamp()) for k in ("bed", "wake", "out")}
        st = stages.filter(pl.col("sleep_date") == d).sort("start_utc")
        hv = hrv5.filter(pl.col("sleep_date") == d).sort("start_utc")
        key = night["wake"]
        temp = (row["skin_temp_dev"], row["skin_temp_c"])
        emit("SLEEP_DATA", key, _sleep_file(user, night, st, hv, temp))
        if len(hv):
            emit("HRV_STATUS", key, _hrv_file(user, night["wake"], hv, history))
            history.append(float(hv["rmssd_ms"].mean()))  # type: ignore[arg-type]

    minutes = pop.minutes.filter(pl.col("user_id") == uid).sort("start_utc")
    t = epoch_s(minutes["start_utc"])
    off = offsets_min(user, t)
    local_day = (t + 60 * off) // 86400
    wk = pop.workouts.filter(pl.col("user_id") == uid).sort("start_utc")
    ws, we = epoch_s(wk["start_utc"]), epoch_s(wk["end_utc"])
    j = np.searchsorted(ws, t, side="right") - 1
    in_w = (j >= 0) & (t < we[np.clip(j, 0, None)]) if len(ws) else np.zeros(len(t), bool)
    acts = wk["activity"].to_numpy()
    running = in_w & (acts[np.clip(j, 0, None)] == "running") if len(ws) else in_w
    steps = minutes["steps"].to_numpy()
    hr = minutes["hr"].to_numpy()
    rhr_by_date = dict(zip(nights["sleep_date"], nights["rhr_bpm"], strict=True))
    resp, spo2 = _minute_vitals(
        t, nights, np.random.default_rng([seed, zlib.crc32(uid.encode()), 2])
    )
    bounds = np.flatnonzero(np.diff(local_day)) + 1
    for seg in np.split(np.arange(len(t)), bounds):
        if len(seg) == 0:
            continue
        d = date.fromordinal(date(1970, 1, 1).toordinal() + int(local_day[seg[0]]))
        data = _wellness_file(
            user,
            t[seg],
            off[seg],
            steps[seg],
            hr[seg],
            running[seg],
            rhr_by_date.get(d),
            resp[seg],
            spo2[seg],
        )
        emit("WELLNESS", int(t[seg[0]]), data)

    for i, w in enumerate(wk.iter_rows(named=True)):
        w = {**w, "start_utc": ws[i], "end_utc": we[i]}
        hr_min = hr[(t >= ws[i]) & (t < we[i])]
        emit("ACTIVITY", int(ws[i]), _activity_file(user, person, w, hr_min, rng))
    return written
