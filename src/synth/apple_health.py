"""Apple Health ``export.zip`` for a simulated person, shaped like an iOS 16+ export.

``apple_health_export/export.xml`` carries the real inline DTD (HealthKit Export Version 14),
then ``ExportDate``, ``Me`` and the records. Every date is local with the offset in effect at
that instant (``2026-03-29 03:12:00 +0200``), so DST and travel show up in the suffixes.

Written: HeartRate (every 5 min, every minute in workouts), HeartRateVariabilitySDNN (a few per
night; the first with ``InstantaneousBeatsPerMinute`` beats), RestingHeartRate (one per day, at
wake), RespiratoryRate and OxygenSaturation (asleep, every 30 / 60 min),
AppleSleepingWristTemperature (one per night, absolute °C), StepCount (10-min buckets with
steps), SleepAnalysis (iPhone ``InBed`` bed..out; Watch ``AsleepCore/Deep/REM`` and mid-night
``Awake``), ``Workout`` with ``WorkoutStatistics`` and a
``WorkoutEffortScore`` record (RPE). Lines are built as polars string columns and streamed into
the zip in chunks, so a year of minutes never sits in memory as one string.
"""

from __future__ import annotations

import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tunewell.settings import UserSettings
from tunewell.synth.people import Person, Population
from tunewell.synth.zones import epoch_s, offsets_min, user_settings

DTD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 14 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth                   CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex                 CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType                     CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse   CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!-- Note: Any Records that appear as children of a correlation also appear as top-level records in this document. -->
<!ELEMENT Correlation ((MetadataEntry|Record)*)>
<!ATTLIST Correlation
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  totalDistance         CDATA #IMPLIED
  totalDistanceUnit     CDATA #IMPLIED
  totalEnergyBurned     CDATA #IMPLIED
  totalEnergyBurnedUnit CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT WorkoutActivity ((MetadataEntry)*)>
<!ATTLIST WorkoutActivity
  uuid                 CDATA #REQUIRED
  startDate            CDATA #REQUIRED
  endDate              CDATA #IMPLIED
  duration             CDATA #IMPLIED
  durationUnit         CDATA #IMPLIED
>
<!ELEMENT WorkoutEvent ((MetadataEntry)*)>
<!ATTLIST WorkoutEvent
  type                 CDATA #REQUIRED
  date                 CDATA #REQUIRED
  duration             CDATA #IMPLIED
  durationUnit         CDATA #IMPLIED
>
<!ELEMENT WorkoutStatistics EMPTY>
<!ATTLIST WorkoutStatistics
  type                 CDATA #REQUIRED
  startDate            CDATA #REQUIRED
  endDate              CDATA #REQUIRED
  average              CDATA #IMPLIED
  minimum              CDATA #IMPLIED
  maximum              CDATA #IMPLIED
  sum                  CDATA #IMPLIED
  unit                 CDATA #IMPLIED
>
<!ELEMENT WorkoutRoute ((MetadataEntry|FileReference)*)>
<!ATTLIST WorkoutRoute
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT FileReference EMPTY>
<!ATTLIST FileReference
  path CDATA #REQUIRED
>
<!ELEMENT ActivitySummary EMPTY>
<!ATTLIST ActivitySummary
  dateComponents           CDATA #IMPLIED
  activeEnergyBurned       CDATA #IMPLIED
  activeEnergyBurnedGoal   CDATA #IMPLIED
  activeEnergyBurnedUnit   CDATA #IMPLIED
  appleMoveTime            CDATA #IMPLIED
  appleMoveTimeGoal        CDATA #IMPLIED
  appleExerciseTime        CDATA #IMPLIED
  appleExerciseTimeGoal    CDATA #IMPLIED
  appleStandHours          CDATA #IMPLIED
  appleStandHoursGoal      CDATA #IMPLIED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
<!-- Note: Heart Rate Variability records captured by Apple Watch may include an associated list of instantaneous beats-per-minute readings. -->
<!ELEMENT HeartRateVariabilityMetadataList (InstantaneousBeatsPerMinute*)>
<!ELEMENT InstantaneousBeatsPerMinute EMPTY>
<!ATTLIST InstantaneousBeatsPerMinute
  bpm  CDATA #REQUIRED
  time CDATA #REQUIRED
>
]>
"""  # noqa: E501  (the DTD is copied verbatim from iOS; its long lines are part of the format)

WATCH_VERSION = "9.4"
PHONE_VERSION = "16.4"
STAGE_VALUE = {
    "light": "HKCategoryValueSleepAnalysisAsleepCore",
    "deep": "HKCategoryValueSleepAnalysisAsleepDeep",
    "rem": "HKCategoryValueSleepAnalysisAsleepREM",
    "awake": "HKCategoryValueSleepAnalysisAwake",
}
WORKOUT_TYPE = {
    "running": "HKWorkoutActivityTypeRunning",
    "cycling": "HKWorkoutActivityTypeCycling",
    "walking": "HKWorkoutActivityTypeWalking",
    "strength": "HKWorkoutActivityTypeTraditionalStrengthTraining",
}
CHUNK = 50_000


def _stamp(utc_s: np.ndarray, off_min: np.ndarray) -> pl.Series:
    """Apple's ``YYYY-MM-DD HH:MM:SS +hhmm`` in the offset in effect at each instant."""
    local = pl.Series(np.asarray(utc_s, dtype=np.int64) + 60 * np.asarray(off_min, dtype=np.int64))
    clock = pl.from_epoch(local, time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    off = np.asarray(off_min, dtype=np.int64)
    sign = np.where(off < 0, "-", "+")
    a = np.abs(off)
    suffix = [f"{s}{h:02d}{m:02d}" for s, h, m in zip(sign, a // 60, a % 60, strict=True)]
    return clock + " " + pl.Series(suffix)


def _device(name: str, model: str, hardware: str, software: str, addr: int) -> str:
    return (
        f"&lt;&lt;HKDevice: 0x{addr:09x}&gt;, name:{name}, manufacturer:Apple Inc., "
        f"model:{model}, hardware:{hardware}, software:{software}&gt;"
    )


def _records(
    kind: str,
    src: str,
    version: str,
    device: str | None,
    unit: str | None,
    start: np.ndarray,
    end: np.ndarray,
    values: pl.Series,
    user: UserSettings,
    tail: pl.Series | None = None,
) -> pl.Series:
    """One ``<Record .../>`` (or with children given by ``tail``) line per row, as strings."""
    off_s = offsets_min(user, start)
    off_e = offsets_min(user, end)
    head = f'  <Record type="{kind}" sourceName="{src}" sourceVersion="{version}"'
    if device:
        head += f' device="{device}"'
    if unit:
        head += f' unit="{unit}"'
    df = pl.DataFrame(
        {
            "c": _stamp(end + 7, off_e),
            "s": _stamp(start, off_s),
            "e": _stamp(end, off_e),
            "v": values.cast(pl.String),
        }
    )
    line = pl.format(
        head + ' creationDate="{}" startDate="{}" endDate="{}" value="{}"', "c", "s", "e", "v"
    )
    df = df.with_columns(line.alias("line"))
    if tail is None:
        return df["line"] + "/>"
    return df["line"] + pl.Series(tail)


def _hrv_tail(
    rng: np.random.Generator,
    start: np.ndarray,
    off: np.ndarray,
    hr: np.ndarray,
    with_beats: np.ndarray,
) -> list[str]:
    out = []
    for t0, o, h, beats in zip(start, off, hr, with_beats, strict=True):
        if not beats:
            out.append("/>")
            continue
        rr = np.clip(60.0 / h + rng.normal(0, 0.04, 60), 0.45, 1.6)
        times = t0 + np.cumsum(rr) + 60 * o
        parts = []
        for t, r in zip(times, rr, strict=True):
            dt = datetime.fromtimestamp(float(t), tz=UTC)
            hh = dt.hour % 12 or 12
            clock = f"{hh}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 10000:02d}"
            ampm = "AM" if dt.hour < 12 else "PM"
            parts.append(
                f'     <InstantaneousBeatsPerMinute bpm="{round(60 / r)}" time="{clock} {ampm}"/>'
            )
        out.append(
            ">\n   <HeartRateVariabilityMetadataList>\n"
            + "\n".join(parts)
            + "\n   </HeartRateVariabilityMetadataList>\n  </Record>"
        )
    return out


def _lines(pop: Population, person: Person, rng: np.random.Generator) -> list[pl.Series]:
    user = user_settings(pop, person)
    uid = person.user_id
    name = f"Person {uid[1:]}"
    watch_src = f"{name}’s Apple Watch"
    phone_src = f"{name}’s iPhone"
    addr = 0x280000000 + zlib.crc32(uid.encode()) % 0xFFFFFFF
    watch = _device("Apple Watch", "Watch", "Watch6,2", WATCH_VERSION, addr)
    phone = _device("iPhone", "iPhone", "iPhone14,2", PHONE_VERSION, addr + 0x1000)
    out: list[pl.Series] = []

    minutes = pop.minutes.filter(pl.col("user_id") == uid).sort("start_utc")
    t = epoch_s(minutes["start_utc"])
    hr = minutes["hr"].to_numpy()
    steps = minutes["steps"].to_numpy()
    wk = pop.workouts.filter(pl.col("user_id") == uid).sort("start_utc")
    ws, we = epoch_s(wk["start_utc"]), epoch_s(wk["end_utc"])
    j = np.searchsorted(ws, t, side="right") - 1
    in_w = (j >= 0) & (t < we[np.clip(j, 0, None)]) if len(ws) else np.zeros(len(t), bool)
    pick = (t // 60) % 5 == 0
    pick |= in_w
    hr_t = t[pick] + (rng.integers(0, 50, int(pick.sum())))
    out.append(
        _records(
            "HKQuantityTypeIdentifierHeartRate",
            watch_src,
            WATCH_VERSION,
            watch,
            "count/min",
            hr_t,
            hr_t,
            pl.Series(np.round(hr[pick]).astype(int)),
            user,
        )
    )

    bucket = t // 600
    agg = (
        pl.DataFrame({"b": bucket, "s": steps})
        .group_by("b", maintain_order=True)
        .agg(pl.col("s").sum())
        .filter(pl.col("s") > 0)
    )
    b = agg["b"].to_numpy() * 600
    out.append(
        _records(
            "HKQuantityTypeIdentifierStepCount",
            watch_src,
            WATCH_VERSION,
            watch,
            "count",
            b,
            b + 600,
            agg["s"],
            user,
        )
    )

    nights = pop.nights.filter(pl.col("user_id") == uid).sort("bed_utc")
    bed, wake, outb = (epoch_s(nights[c]) for c in ("bed_utc", "wake_utc", "out_utc"))
    out.append(
        _records(
            "HKCategoryTypeIdentifierSleepAnalysis",
            phone_src,
            PHONE_VERSION,
            phone,
            None,
            bed,
            outb,
            pl.Series(["HKCategoryValueSleepAnalysisInBed"] * len(bed)),
            user,
        )
    )
    stages = pop.stages.filter(pl.col("user_id") == uid).sort("start_utc")
    ss, se = epoch_s(stages["start_utc"]), epoch_s(stages["end_utc"])
    k = np.clip(np.searchsorted(bed, ss, side="right") - 1, 0, None)
    inside = (ss >= bed[k]) & (se <= wake[k])
    asleep_phase = inside & ~((stages["stage"].to_numpy() == "awake") & (ss == bed[k]))
    st = stages.filter(pl.Series(asleep_phase))
    out.append(
        _records(
            "HKCategoryTypeIdentifierSleepAnalysis",
            watch_src,
            WATCH_VERSION,
            watch,
            None,
            ss[asleep_phase],
            se[asleep_phase],
            st["stage"].replace_strict(STAGE_VALUE),
            user,
        )
    )

    rhr_t = wake + 3600
    out.append(
        _records(
            "HKQuantityTypeIdentifierRestingHeartRate",
            watch_src,
            WATCH_VERSION,
            watch,
            "count/min",
            rhr_t,
            rhr_t + 43200,
            nights["rhr_bpm"].round(0).cast(pl.Int64),
            user,
        )
    )

    out += _sleep_vitals(nights, watch_src, watch, user, zlib.crc32(uid.encode()))

    hrv5 = pop.hrv5.filter(pl.col("user_id") == uid).sort("start_utc")
    h5 = (
        hrv5.with_columns(pl.int_range(pl.len()).over("sleep_date").alias("i")).filter(
            pl.col("i") % 24 == 6
        )  # about every 2 h of sleep, one 1-min SDNN reading
    )
    if len(h5):
        st5 = epoch_s(h5["start_utc"])
        sdnn = (h5["rmssd_ms"] * 1.25).round(4)
        first = (h5["i"] == 6).to_numpy()
        jhr = np.clip(np.searchsorted(t, st5), 0, len(t) - 1)
        tail = _hrv_tail(rng, st5, offsets_min(user, st5), hr[jhr], first)
        out.append(
            _records(
                "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
                watch_src,
                WATCH_VERSION,
                watch,
                "ms",
                st5,
                st5 + 60,
                sdnn,
                user,
                pl.Series(tail),
            )
        )
    if len(wk):
        out.append(_workouts(wk, ws, we, t, hr, user, watch_src, watch))
    return out


def _sleep_vitals(
    nights: pl.DataFrame, src: str, device: str, user: UserSettings, key: int
) -> list[pl.Series]:
    """What the Watch measures asleep: respiratory rate every 30 min, blood oxygen every hour
    (as a fraction, like HealthKit), and one sleeping wrist temperature (absolute °C) a night.

    Own generator, so the other records stay as they were before these existed."""
    rng = np.random.default_rng([key, 2])
    onset, wake = epoch_s(nights["onset_utc"]), epoch_s(nights["wake_utc"])
    out = []
    for kind, unit, every, col, sd in (
        ("RespiratoryRate", "count/min", 1800, "resp_rate", 0.5),
        ("OxygenSaturation", "%", 3600, "spo2_pct", 0.7),
    ):
        n = (wake - onset) // every
        idx = np.repeat(np.arange(len(onset)), n)
        t = onset[idx] + every * (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
        v = nights[col].to_numpy()[idx] + rng.normal(0, sd, len(idx))
        values = np.round(v, 1) if col == "resp_rate" else np.round(np.clip(v, 85, 100)) / 100
        out.append(
            _records(
                f"HKQuantityTypeIdentifier{kind}",
                src,
                WATCH_VERSION,
                device,
                unit,
                t,
                t,
                pl.Series(values),
                user,
            )
        )
    out.append(
        _records(
            "HKQuantityTypeIdentifierAppleSleepingWristTemperature",
            src,
            WATCH_VERSION,
            device,
            "degC",
            onset,
            wake,
            nights["skin_temp_c"].round(2),
            user,
        )
    )
    return out


def _workouts(
    wk: pl.DataFrame,
    ws: np.ndarray,
    we: np.ndarray,
    t: np.ndarray,
    hr: np.ndarray,
    user: UserSettings,
    src: str,
    device: str,
) -> pl.Series:
    off_s, off_e = offsets_min(user, ws), offsets_min(user, we)
    s, e, c = _stamp(ws, off_s), _stamp(we, off_e), _stamp(we + 12, off_e)
    lines = []
    speed = {"running": 3.2, "cycling": 8.0, "walking": 1.4, "strength": 0.0}
    for i, w in enumerate(wk.iter_rows(named=True)):
        mins = (we[i] - ws[i]) / 60.0
        sel = (t >= ws[i]) & (t < we[i])
        h = hr[sel] if sel.any() else np.array([w["avg_hr"]])
        km = speed[w["activity"]] * mins * 60 / 1000
        kcal = mins * (6 + 8 * w["hard"])
        attrs = f'sourceName="{src}" sourceVersion="{WATCH_VERSION}" device="{device}"'
        lines.append(
            f'  <Workout workoutActivityType="{WORKOUT_TYPE[w["activity"]]}" '
            f'duration="{mins:.4f}" durationUnit="min" {attrs} '
            f'creationDate="{c[i]}" startDate="{s[i]}" endDate="{e[i]}">\n'
            f'   <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
            f'   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="{s[i]}" '
            f'endDate="{e[i]}" average="{w["avg_hr"]:.0f}" minimum="{h.min():.0f}" '
            f'maximum="{w["max_hr"]:.0f}" unit="count/min"/>\n'
            f'   <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" '
            f'startDate="{s[i]}" endDate="{e[i]}" sum="{kcal:.1f}" unit="kcal"/>\n'
            + (
                f'   <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" '
                f'startDate="{s[i]}" endDate="{e[i]}" sum="{km:.3f}" unit="km"/>\n'
                if w["activity"] in ("running", "walking")
                else ""
            )
            + "  </Workout>\n"
            f'  <Record type="HKQuantityTypeIdentifierWorkoutEffortScore" sourceName="{src}" '
            f'sourceVersion="{WATCH_VERSION}" unit="appleEffortScore" creationDate="{c[i]}" '
            f'startDate="{s[i]}" endDate="{e[i]}" value="{w["rpe"]}"/>'
        )
    return pl.Series(lines)


def write_apple(pop: Population, person: Person, out_dir: Path, seed: int = 0) -> Path:
    """Write ``out_dir/export.zip`` for one person; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib.crc32(person.user_id.encode()), 2])
    user = user_settings(pop, person)
    out_utc: datetime = pop.nights.filter(pl.col("user_id") == person.user_id)["out_utc"].max()  # type: ignore[assignment]
    last = int(out_utc.timestamp())
    export_t = np.array([last + 7200])
    export_date = _stamp(export_t, offsets_min(user, export_t))[0]
    birth = (datetime(2026, 1, 1) - timedelta(days=365.25 * (208 - person.hr_max) / 0.7)).date()
    sex = "HKBiologicalSexMale" if person.sex == "male" else "HKBiologicalSexFemale"
    header = (
        DTD
        + '<HealthData locale="en_US">\n'
        + f' <ExportDate value="{export_date}"/>\n'
        + f' <Me HKCharacteristicTypeIdentifierDateOfBirth="{birth}" '
        + f'HKCharacteristicTypeIdentifierBiologicalSex="{sex}" '
        + 'HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" '
        + 'HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" '
        + 'HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>\n'
    )
    path = out_dir / "export.zip"
    info = zipfile.ZipInfo("apple_health_export/export.xml", date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w") as fh:
        fh.write(header.encode())
        for series in _lines(pop, person, rng):
            for off in range(0, len(series), CHUNK):
                part = series.slice(off, CHUNK)
                fh.write(("\n".join(part.to_list()) + "\n").encode())
        fh.write(b"</HealthData>\n")
    return path
