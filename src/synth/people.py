"""Seeded synthetic people with known physiology, the ground truth behind every synthetic file.

The vendor writers only format what is simulated here, so a test can plant an effect once
(hard training day -> lower next-night RMSSD, weekend -> later sleep, travel -> shifted clocks,
DST -> changed offsets) and check that it survives each vendor format and the whole pipeline.

Each person draws from their own generator (seeded by ``[seed, index]``), so person ``i`` is the
same whatever ``n_users`` is: benchmarks with 100 people contain the 3 demo people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from tunewell.settings import Sex

# 2026-03-10 + 35 days crosses the European spring DST change (Sunday 2026-03-29).
DEFAULT_START = date(2026, 3, 10)
HOME_ZONES = ("Europe/Berlin", "Europe/London", "Europe/Berlin", "America/New_York", "Europe/Paris")
TRAVEL_ZONE = "America/New_York"
STAGES = ("awake", "light", "deep", "rem")

# Effects planted on the NEXT night (ln RMSSD units / bpm); tests recover them from the files.
HARD_DAY_LN = -0.15
HARD_DAY_RHR = 3.0
SHORT_NIGHT_LN = -0.10
SHORT_NIGHT_RHR = 1.5
JETLAG_LN = -0.12
JETLAG_RHR = 2.0
# Arousal markers on the same nights (breaths/min / °C): a hard day, a short night or jet lag
# raises the sleeping respiratory rate and the skin-temperature deviation.
HARD_DAY_RESP = 0.8
HARD_DAY_TEMP = 0.30
SHORT_NIGHT_RESP = 0.4
SHORT_NIGHT_TEMP = 0.15
JETLAG_RESP = 0.5
JETLAG_TEMP = 0.20
# Journal behaviours (simulate(..., behaviours=True)): only alcohol moves the next night.
ALCOHOL_LN = -0.20
ALCOHOL_RHR = 2.5
JOURNAL_ITEMS = ("alcohol", "screen_in_bed", "caffeine")  # WHOOP journal questions, see whoop.py
JOURNAL_P_YES = {"alcohol": 0.25, "screen_in_bed": 0.4, "caffeine": 0.5}


@dataclass(frozen=True)
class Person:
    user_id: str
    sex: Sex
    tz_home: str  # IANA, e.g. "Europe/Berlin"
    ln_rmssd_base: float  # personal baseline ln(RMSSD ms)
    rhr_base: float  # resting HR bpm
    hr_max: float
    chronotype_mid_h: float  # usual workday sleep midpoint, local hours after midnight
    social_jetlag_h: float  # weekend shift later
    travels: bool = False  # spends one week in TRAVEL_ZONE


@dataclass
class Population:
    people: list[Person]
    tz_history: dict[str, list[tuple[date, str]]]  # user -> [(since_local_date, tz)]
    nights: pl.DataFrame
    stages: pl.DataFrame
    hrv5: pl.DataFrame
    minutes: pl.DataFrame
    workouts: pl.DataFrame
    # Day-d journal answers (user_id, date, item, yes); empty unless simulated with behaviours.
    journal: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"user_id": pl.String, "date": pl.Date, "item": pl.String, "yes": pl.Boolean}
        )
    )

    def person(self, user_id: str) -> Person:
        return next(p for p in self.people if p.user_id == user_id)


def make_people(n_users: int, seed: int) -> list[Person]:
    people = []
    for i in range(n_users):
        rng = np.random.default_rng([seed, i, 0])
        sex: Sex = "male" if i % 2 == 0 else "female"
        age = rng.uniform(22, 55)
        people.append(
            Person(
                user_id=f"p{i + 1:03d}",
                sex=sex,
                tz_home=HOME_ZONES[i % len(HOME_ZONES)],
                ln_rmssd_base=round(float(rng.uniform(3.6, 4.3)), 3),
                rhr_base=round(float(rng.uniform(47, 62)), 1),
                hr_max=round(float(208 - 0.7 * age + rng.normal(0, 4)), 0),
                chronotype_mid_h=round(float(rng.uniform(2.8, 4.3)), 2),
                social_jetlag_h=round(float(rng.uniform(0.6, 1.8)), 2),
                travels=(i % 3 == 0 and HOME_ZONES[i % len(HOME_ZONES)] != TRAVEL_ZONE),
            )
        )
    return people


def travel_window(start: date, days: int) -> tuple[date, date] | None:
    """Outbound flight day and return day (a red-eye: the night before it is spent flying)."""
    if days < 21:
        return None
    return start + timedelta(days=4), start + timedelta(days=11)


def _tz_history(p: Person, start: date, days: int) -> list[tuple[date, str]]:
    win = travel_window(start, days)
    if not p.travels or win is None:
        return []
    return [(win[0], TRAVEL_ZONE), (win[1], p.tz_home)]


def _zone_on(d: date, home: str, hist: list[tuple[date, str]]) -> str:
    tz = home
    for since, z in hist:
        if d >= since:
            tz = z
    return tz


def _utc_seconds(d: date, hours: float, tz: str) -> int:
    """Local wall clock (date + hours) to UTC epoch seconds, as a phone alarm/clock would see it."""
    # Aware + timedelta is wall-clock arithmetic in Python: the offset is resolved at the result,
    # so a 23:30 bedtime stays 23:30 on the clock across a DST change.
    local = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)) + timedelta(hours=hours)
    return int(local.timestamp())


def _hypnogram(
    rng: np.random.Generator, bed: int, onset: int, wake: int, out: int
) -> list[tuple[int, int, int]]:
    """Stage segments (start_s, end_s, stage index) with ~90-min cycles: deep early, REM late."""
    segs: list[tuple[int, int, int]] = [(bed, onset, 0)]
    t = onset
    cycle = 0
    deep_by_cycle = (38.0, 24.0, 12.0, 4.0)
    rem_by_cycle = (9.0, 18.0, 26.0, 32.0)
    while t < wake:
        k = min(cycle, 3)
        clen = float(np.clip(rng.normal(92, 10), 72, 115))
        deep = max(0.0, deep_by_cycle[k] + rng.normal(0, 5))
        rem = float(np.clip(rem_by_cycle[k] + rng.normal(0, 4), 3, clen * 0.5))
        light = max(10.0, clen - deep - rem)
        parts: tuple[tuple[int, float], ...] = (
            (1, light * 0.65),
            (2, deep),
            (1, light * 0.35),
            (3, rem),
        )
        if rng.random() < 0.45:
            parts += ((0, float(np.clip(rng.exponential(3.0), 1.0, 14.0))),)
        for stage, minutes in parts:
            dur = round(minutes * 2) * 30  # whole 30-s epochs, as vendors score them
            if dur <= 0 or t >= wake:
                continue
            end = min(t + dur, wake)
            segs.append((t, end, stage))
            t = end
        cycle += 1
    if out > wake:
        segs.append((wake, out, 0))
    merged: list[tuple[int, int, int]] = []
    for s in segs:
        if merged and merged[-1][2] == s[2] and merged[-1][1] == s[0]:
            merged[-1] = (merged[-1][0], s[1], s[2])
        elif s[1] > s[0]:
            merged.append(s)
    return merged


def _ts(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="s").dt.replace_time_zone("UTC").alias(col)


def _person_block(
    p: Person, idx: int, seed: int, start: date, days: int, behaviours: bool = False
) -> dict[str, Any]:
    rng = np.random.default_rng([seed, idx, 1])
    hist = _tz_history(p, start, days)
    win = travel_window(start, days) if p.travels else None
    sleep_dates = [start + timedelta(days=i) for i in range(days)]
    # Days whose training decides the next night: the evening before each sleep date.
    train_days = [d - timedelta(days=1) for d in sleep_dates]
    # Journal answers for day d come from their own stream, so the rest of the person is the
    # same with or without behaviours.
    jrng = np.random.default_rng([seed, idx, 2])
    answers = {k: jrng.random(days) < JOURNAL_P_YES[k] for k in JOURNAL_ITEMS}
    alcohol = answers["alcohol"] if behaviours else np.zeros(days, dtype=bool)

    # --- training: 3 build weeks then a deload week; hard sessions Tue/Thu/Sat in build weeks.
    wk = np.array([(d - train_days[0]).days // 7 for d in train_days])
    build = (wk % 4) != 3
    dow = np.array([d.weekday() for d in train_days])
    traveling = np.array(
        [win is not None and win[0] - timedelta(days=1) <= d < win[1] for d in train_days]
    )
    hard = build & np.isin(dow, (1, 3, 5)) & ~traveling
    hard |= (rng.random(days) < 0.05) & ~traveling
    easy = ~hard & (rng.random(days) < 0.4) & ~np.isin(dow, (0, 4))

    # --- sleep timing in local clock of the zone the person is in that evening.
    zones = [_zone_on(d, p.tz_home, hist) for d in train_days]
    free = np.array([d.weekday() >= 5 for d in sleep_dates])  # Sat/Sun wake-ups: free days
    jet = np.zeros(days)  # nights since arrival (westward: body clock runs ahead, sleeps early)
    if win is not None:
        for i, d in enumerate(train_days):
            if win[0] <= d < win[1]:
                jet[i] = max(0.0, 3.0 - 1.0 * (d - win[0]).days)
    short = rng.random(days) < 0.1
    mid = p.chronotype_mid_h + free * p.social_jetlag_h - jet + rng.normal(0, 0.35, days)
    dur_h = np.where(short, rng.uniform(4.9, 5.7, days), rng.normal(7.5, 0.45, days) + free * 0.7)
    dur_h = np.where(short, dur_h, np.clip(dur_h, 6.7, 9.8))
    mid = np.where(short, mid + 0.6, mid)  # short nights: late to bed, alarm as usual
    sol_min = rng.uniform(5, 25, days)
    after_min = rng.uniform(2, 15, days)

    skip = np.zeros(days, dtype=bool)
    if win is not None:
        skip = np.array([d == win[1] for d in sleep_dates])  # red-eye flight home: no sleep

    night_rows: dict[str, list] = {
        k: [] for k in ("sleep_date", "tz", "bed", "onset", "wake", "out")
    }
    stage_rows: dict[str, list] = {k: [] for k in ("sleep_date", "start", "end", "stage")}
    tst = []
    for i, d in enumerate(sleep_dates):
        if skip[i]:
            continue
        tz = zones[i]
        onset = _utc_seconds(d, float(mid[i] - dur_h[i] / 2), tz)
        wake = onset + int(dur_h[i] * 3600)
        bed = onset - int(sol_min[i] * 60)
        out = wake + int(after_min[i] * 60)
        segs = _hypnogram(rng, bed, onset, wake, out)
        for col, v in zip(
            ("sleep_date", "tz", "bed", "onset", "wake", "out"),
            (d, tz, bed, onset, wake, out),
            strict=True,
        ):
            night_rows[col].append(v)
        stage_rows["sleep_date"] += [d] * len(segs)
        stage_rows["start"] += [s[0] for s in segs]
        stage_rows["end"] += [s[1] for s in segs]
        stage_rows["stage"] += [s[2] for s in segs]
        tst.append(sum(s[1] - s[0] for s in segs if s[2] != 0) / 60.0)

    keep = ~skip
    n = int(keep.sum())
    tst_a = np.array(tst)
    is_short = tst_a < 360
    prev_short = np.concatenate([[False], is_short[:-1]])
    hard_before = hard[keep]
    jet_k = jet[keep]
    # Day-to-day noise is autocorrelated (AR(1)) like real nightly HRV.
    noise = np.zeros(n)
    eps = rng.normal(0, 0.07, n)
    for i in range(n):
        noise[i] = (0.4 * noise[i - 1] if i else 0.0) + eps[i]
    ln_night = (
        p.ln_rmssd_base
        + noise
        + HARD_DAY_LN * hard_before
        + SHORT_NIGHT_LN * prev_short
        + JETLAG_LN * (jet_k > 0)
        + ALCOHOL_LN * alcohol[keep]
    )
    rhr = (
        p.rhr_base
        + rng.normal(0, 1.2, n)
        + HARD_DAY_RHR * hard_before
        + SHORT_NIGHT_RHR * prev_short
        + JETLAG_RHR * (jet_k > 0)
        + ALCOHOL_RHR * alcohol[keep]
    )
    lowest = rhr - rng.uniform(2, 5, n)
    # Vitals draw from their own generator, so every stream above is what it was before them.
    vr = np.random.default_rng([seed, idx, 2])
    resp_base, temp_base, spo2_base = vr.uniform(12.5, 16.5), vr.uniform(33.0, 34.8), 96.0
    spo2_base += vr.uniform(-1.0, 1.5)
    arousal = np.stack([hard_before, prev_short, jet_k > 0]).astype(float)
    resp = resp_base + vr.normal(0, 0.35, n)
    resp += np.array([HARD_DAY_RESP, SHORT_NIGHT_RESP, JETLAG_RESP]) @ arousal
    temp_dev = vr.normal(0, 0.12, n)
    temp_dev += np.array([HARD_DAY_TEMP, SHORT_NIGHT_TEMP, JETLAG_TEMP]) @ arousal
    spo2 = np.clip(spo2_base + vr.normal(0, 0.6, n), 90, 100)

    # --- 5-min HRV over the main sleep (onset..wake), modulated by the stage at each window.
    st_start = np.array(stage_rows["start"], dtype=np.int64)
    st_end = np.array(stage_rows["end"], dtype=np.int64)
    st_stage = np.array(stage_rows["stage"], dtype=np.int8)
    onset_a = np.array(night_rows["onset"], dtype=np.int64)
    wake_a = np.array(night_rows["wake"], dtype=np.int64)
    n_win = ((wake_a - onset_a) // 300).astype(np.int64)
    night_of_win = np.repeat(np.arange(n), n_win)
    win_start = onset_a[night_of_win] + 300 * (
        np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win)
    )
    win_stage = st_stage[np.searchsorted(st_start, win_start + 150, side="right") - 1]
    stage_eff = np.array([-0.20, 0.0, 0.12, -0.10])
    ln5 = ln_night[night_of_win] + stage_eff[win_stage] + rng.normal(0, 0.12, len(win_start))
    rmssd5 = np.round(np.exp(ln5), 1)
    nightly = np.array([np.median(rmssd5[night_of_win == i]) for i in range(n)])

    # --- workouts (evening on weekdays, morning on weekends, local clock of that day's zone).
    w_days = [i for i in range(days) if hard[i] or easy[i]]
    w_rows: dict[str, list] = {
        k: [] for k in ("start", "end", "activity", "avg_hr", "max_hr", "hard", "rpe")
    }
    hrr = p.hr_max - p.rhr_base
    for i in w_days:
        d = train_days[i]
        start_h = rng.uniform(9, 10.5) if d.weekday() >= 5 else rng.uniform(17.5, 19)
        if hard[i]:
            minutes = rng.uniform(55, 95)
            activity = "running" if rng.random() < 0.6 else "cycling"
            avg = p.rhr_base + hrr * rng.uniform(0.72, 0.82)
            rpe = int(rng.integers(7, 10))
        else:
            minutes = rng.uniform(25, 50)
            activity = ("running", "cycling", "walking", "strength")[int(rng.integers(0, 4))]
            avg = p.rhr_base + hrr * rng.uniform(0.45, 0.58)
            rpe = int(rng.integers(2, 5))
        s = _utc_seconds(d, float(start_h), zones[i])
        w_rows["start"].append(s)
        w_rows["end"].append(s + int(minutes * 60))
        w_rows["activity"].append(activity)
        w_rows["avg_hr"].append(round(float(avg), 0))
        w_rows["max_hr"].append(round(float(min(p.hr_max, avg + hrr * rng.uniform(0.1, 0.2))), 0))
        w_rows["hard"].append(bool(hard[i]))
        w_rows["rpe"].append(rpe)

    nights = pl.DataFrame(
        {
            "user_id": [p.user_id] * n,
            "sleep_date": night_rows["sleep_date"],
            "tz": night_rows["tz"],
            "bed_utc": night_rows["bed"],
            "onset_utc": night_rows["onset"],
            "wake_utc": night_rows["wake"],
            "out_utc": night_rows["out"],
            "tst_min": tst_a,
            "is_short": is_short,
            "hard_day_before": hard_before,
            "rmssd_ms": nightly,
            "rhr_bpm": np.round(rhr, 1),
            "lowest_hr": np.round(lowest, 1),
            "resp_rate": np.round(resp, 2),
            "skin_temp_dev": np.round(temp_dev, 3),
            "skin_temp_c": np.round(temp_base + temp_dev, 3),
            "spo2_pct": np.round(spo2, 2),
        },
        schema_overrides={k: pl.Int64 for k in ("bed_utc", "onset_utc", "wake_utc", "out_utc")},
    )
    stages = pl.DataFrame(
        {
            "user_id": [p.user_id] * len(st_start),
            "sleep_date": stage_rows["sleep_date"],
            "start_utc": st_start,
            "end_utc": st_end,
            "stage": [STAGES[s] for s in st_stage],
        }
    )
    hrv5 = pl.DataFrame(
        {
            "user_id": [p.user_id] * len(win_start),
            "sleep_date": [night_rows["sleep_date"][i] for i in night_of_win],
            "start_utc": win_start,
            "rmssd_ms": rmssd5,
        }
    )
    workouts = pl.DataFrame(
        {
            "user_id": [p.user_id] * len(w_days),
            **{
                "start_utc": w_rows["start"],
                "end_utc": w_rows["end"],
                "activity": w_rows["activity"],
                "avg_hr": w_rows["avg_hr"],
                "max_hr": w_rows["max_hr"],
                "hard": w_rows["hard"],
                "rpe": w_rows["rpe"],
            },
        },
        schema_overrides={
            "start_utc": pl.Int64,
            "end_utc": pl.Int64,
            "avg_hr": pl.Float64,
            "max_hr": pl.Float64,
            "hard": pl.Boolean,
            "rpe": pl.Int64,
            "activity": pl.String,
        },
    )
    minute_rows = _minutes(p, rng, start, days, stages, nights, workouts)
    journal = pl.DataFrame(
        {
            "user_id": [p.user_id] * (days * len(JOURNAL_ITEMS) if behaviours else 0),
            "date": [d for k in JOURNAL_ITEMS for d in train_days] if behaviours else [],
            "item": [k for k in JOURNAL_ITEMS for _ in train_days] if behaviours else [],
            "yes": np.concatenate([answers[k] for k in JOURNAL_ITEMS]) if behaviours else [],
        },
        schema={"user_id": pl.String, "date": pl.Date, "item": pl.String, "yes": pl.Boolean},
    )
    return {
        "journal": journal,
        "nights": nights,
        "stages": stages,
        "hrv5": hrv5,
        "workouts": workouts,
        "minutes": minute_rows,
        "hist": hist,
    }


def _minutes(
    p: Person,
    rng: np.random.Generator,
    start: date,
    days: int,
    stages: pl.DataFrame,
    nights: pl.DataFrame,
    workouts: pl.DataFrame,
) -> pl.DataFrame:
    """Minute steps and HR, consistent with sleep stages, the night's HR and workouts."""
    t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) - 86400
    t = t0 + 60 * np.arange((days + 1) * 1440, dtype=np.int64)
    mid = t + 30
    st_s = stages["start_utc"].to_numpy()
    st_e = stages["end_utc"].to_numpy()
    st_code = stages["stage"].replace_strict({s: i for i, s in enumerate(STAGES)}).to_numpy()
    j = np.searchsorted(st_s, mid, side="right") - 1
    in_bed = (j >= 0) & (mid < st_e[np.clip(j, 0, None)])
    stage = np.where(in_bed, st_code[np.clip(j, 0, None)], -1)

    # Night-level HR floor for each in-bed minute (via the episode's index).
    n_bed = nights["bed_utc"].to_numpy()
    n_low = nights["lowest_hr"].to_numpy()
    n_rhr = nights["rhr_bpm"].to_numpy()
    k = np.clip(np.searchsorted(n_bed, mid, side="right") - 1, 0, None)
    low = n_low[k] if len(n_low) else np.full(len(t), p.rhr_base - 3)
    rhr_day = n_rhr[k] if len(n_rhr) else np.full(len(t), p.rhr_base)

    w_s = workouts["start_utc"].to_numpy()
    w_e = workouts["end_utc"].to_numpy()
    w_avg = workouts["avg_hr"].to_numpy()
    w_act = workouts["activity"].to_numpy()
    wj = np.searchsorted(w_s, mid, side="right") - 1
    in_w = (wj >= 0) & (mid < w_e[np.clip(wj, 0, None)]) if len(w_s) else np.zeros(len(t), bool)
    wjc = np.clip(wj, 0, None)

    n = len(t)
    walking = (~in_bed) & (rng.random(n) < 0.08)
    steps = np.where(walking, rng.poisson(85, n), rng.poisson(1.5, n) * (~in_bed))
    if len(w_s):
        cadence = np.select(
            [w_act[wjc] == "running", w_act[wjc] == "walking", w_act[wjc] == "strength"],
            [rng.normal(165, 6, n), rng.normal(110, 8, n), rng.poisson(8, n)],
            default=0,
        )
        steps = np.where(in_w, np.clip(cadence, 0, None), steps)
    steps = np.where(in_bed, 0, steps).astype(np.int32)

    stage_add = np.array([12.0, 4.0, 1.5, 7.0])  # awake, light, deep, rem above the night low
    hr_sleep = low + stage_add[np.clip(stage, 0, 3)] + rng.normal(0, 1.2, n)
    hr_day = rhr_day + 14 + 0.18 * steps + rng.normal(0, 3.0, n)
    hr = np.where(in_bed, hr_sleep, hr_day)
    if len(w_s):
        ramp = np.clip((mid - w_s[wjc]) / 600.0, 0.3, 1.0)
        hr_w = rhr_day + (w_avg[wjc] - rhr_day) * ramp + rng.normal(0, 4.0, n)
        hr = np.where(in_w, hr_w, hr)
    hr = np.round(np.clip(hr, 35, p.hr_max), 1).astype(np.float32)
    return pl.DataFrame(
        {
            "user_id": pl.Series([p.user_id], dtype=pl.String).extend_constant(p.user_id, n - 1),
            "start_utc": t,
            "steps": steps,
            "hr": hr,
        }
    )


def simulate(
    n_users: int = 3,
    days: int = 35,
    seed: int = 7,
    start: date | None = None,
    behaviours: bool = False,
) -> Population:
    """Simulate ``n_users`` people over ``days`` sleep dates (local wake dates from ``start``).

    ``behaviours`` adds a daily journal (alcohol, screen in bed, caffeine) in which alcohol on
    day d lowers the next night's lnRMSSD by ALCOHOL_LN and raises resting HR by ALCOHOL_RHR;
    the other answers have no effect (a known null for the insight tests).
    """
    start = start or DEFAULT_START
    people = make_people(n_users, seed)
    blocks = [_person_block(p, i, seed, start, days, behaviours) for i, p in enumerate(people)]

    def cat(name: str, ts_cols: tuple[str, ...]) -> pl.DataFrame:
        df = pl.concat([b[name] for b in blocks], how="vertical")
        return df.with_columns([_ts(c) for c in ts_cols])

    return Population(
        people=people,
        tz_history={p.user_id: b["hist"] for p, b in zip(people, blocks, strict=True)},
        nights=cat("nights", ("bed_utc", "onset_utc", "wake_utc", "out_utc")),
        stages=cat("stages", ("start_utc", "end_utc")),
        hrv5=cat("hrv5", ("start_utc",)),
        minutes=cat("minutes", ("start_utc",)),
        workouts=cat("workouts", ("start_utc", "end_utc")),
        journal=pl.concat([b["journal"] for b in blocks], how="vertical"),
    )
