"""A heavy Apple Watch user's ``export.zip``, for benchmarks: any size, real record mix.

Heavy exports are what break readers, so this writes one of a chosen XML size with the mix seen
in real multi-year Apple Watch exports: HeartRate ~45 % (with the motion-context MetadataEntry
child), StepCount ~15 %, active and basal energy ~30 %, walking/running distance ~6 %, and the
rest SleepAnalysis stages, HRV SDNN with InstantaneousBeatsPerMinute lists, RestingHeartRate and
Workouts with WorkoutStatistics. Every record carries the HKDevice string; dates are local with
Europe/Berlin's +0100/+0200 offsets over the years covered; the iOS 16 DTD comes first. Records
are written type by type, in time order, as Apple's exporter does.

Lines are built as polars string columns, so a 1 GB file takes about a minute to write.

    python bench/heavy_apple.py --mb 250 --out bench/out/apple-250/export.zip
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from tunewell.synth.apple_health import DTD

TZ = "Europe/Berlin"
START = 1_640_995_200  # 2022-01-01 00:00 UTC
WATCH = (
    "&lt;&lt;HKDevice: 0x28fa3c2d0&gt;, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,2, software:9.1&gt;"
)
PHONE = (
    "&lt;&lt;HKDevice: 0x28fa3c5a0&gt;, name:iPhone, manufacturer:Apple Inc., "
    "model:iPhone, hardware:iPhone14,5, software:16.1&gt;"
)
# (type, unit, share of records, seconds between records, value range, source, device)
QUANTITIES = (
    ("HKQuantityTypeIdentifierHeartRate", "count/min", 0.45, 300, (48, 165), "watch"),
    ("HKQuantityTypeIdentifierStepCount", "count", 0.15, 600, (5, 900), "phone"),
    ("HKQuantityTypeIdentifierActiveEnergyBurned", "kcal", 0.18, 240, (0.1, 12), "watch"),
    ("HKQuantityTypeIdentifierBasalEnergyBurned", "kcal", 0.12, 360, (1, 2.5), "watch"),
    ("HKQuantityTypeIdentifierDistanceWalkingRunning", "km", 0.06, 600, (0.001, 0.8), "phone"),
)
RECORD_BYTES = 430  # mean bytes of one record line of the mix above (measured on a sample)


def _stamp(utc_s: np.ndarray) -> pl.Series:
    """Apple's ``YYYY-MM-DD HH:MM:SS +hhmm`` in Berlin time at each instant."""
    t = pl.from_epoch(pl.Series(utc_s.astype(np.int64)), time_unit="s").dt.replace_time_zone("UTC")
    return t.dt.convert_time_zone(TZ).dt.strftime("%Y-%m-%d %H:%M:%S %z")


def _quantity(
    kind: str, unit: str, t0: np.ndarray, dur: int, val: np.ndarray, dev: str
) -> pl.Series:
    src, ver, device = ("Watch", "9.1", WATCH) if dev == "watch" else ("iPhone", "16.1", PHONE)
    df = pl.DataFrame({"s": _stamp(t0), "e": _stamp(t0 + dur), "c": _stamp(t0 + dur + 7)})
    df = df.with_columns(pl.Series("v", val).round(3).cast(pl.String))
    head = (
        f'  <Record type="{kind}" sourceName="{src}" sourceVersion="{ver}" device="{device}" '
        f'unit="{unit}"'
    )
    line = pl.format(
        head + ' creationDate="{}" startDate="{}" endDate="{}" value="{}"', "c", "s", "e", "v"
    )
    if kind.endswith("HeartRate"):
        tail = (
            '>\n   <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n'
            "  </Record>"
        )
    else:
        tail = "/>"
    return df.select(line + tail).to_series()


def _nights(days: int, rng: np.random.Generator) -> list[str]:
    """SleepAnalysis stage records, a few HRV records with beats, RestingHeartRate, workouts."""
    out: list[str] = []
    stages = ("AsleepCore", "AsleepDeep", "AsleepCore", "AsleepREM", "Awake")
    for d in range(days):
        bed = START + d * 86400 + 21 * 3600 + int(rng.integers(0, 7200))
        t = bed
        rows = []
        while t < bed + 7.5 * 3600:
            stg = stages[int(rng.integers(0, len(stages)))]
            dur = int(rng.integers(300, 2400))
            rows.append((t, t + dur, stg))
            t += dur
        s = _stamp(np.array([r[0] for r in rows]))
        e = _stamp(np.array([r[1] for r in rows]))
        for (_, _, stg), a, b in zip(rows, s, e, strict=True):
            out.append(
                '  <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
                f'sourceVersion="9.1" device="{WATCH}" creationDate="{b}" startDate="{a}" '
                f'endDate="{b}" value="HKCategoryValueSleepAnalysis{stg}"/>'
            )
        h0 = bed + 3 * 3600
        hs = _stamp(np.array([h0, h0 + 60, START + (d + 1) * 86400 + 8 * 3600]))
        beats = "\n".join(
            f'     <InstantaneousBeatsPerMinute bpm="{int(b)}" '
            f'time="3:{i // 60:02d}:{i % 60:02d}.00 AM"/>'
            for i, b in enumerate(rng.integers(52, 64, 60))
        )
        out.append(
            '  <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="Watch" '
            f'sourceVersion="9.1" device="{WATCH}" unit="ms" creationDate="{hs[1]}" '
            f'startDate="{hs[0]}" endDate="{hs[1]}" value="{rng.uniform(25, 80):.3f}">\n'
            f"   <HeartRateVariabilityMetadataList>\n{beats}\n"
            "   </HeartRateVariabilityMetadataList>\n  </Record>"
        )
        out.append(
            '  <Record type="HKQuantityTypeIdentifierRestingHeartRate" sourceName="Watch" '
            f'sourceVersion="9.1" device="{WATCH}" unit="count/min" creationDate="{hs[2]}" '
            f'startDate="{hs[2]}" endDate="{hs[2]}" value="{int(rng.integers(50, 62))}"/>'
        )
        if d % 2 == 0:
            w0 = START + d * 86400 + 16 * 3600
            ws = _stamp(np.array([w0, w0 + 2700]))
            out.append(
                '  <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="45" '
                f'durationUnit="min" sourceName="Watch" sourceVersion="9.1" device="{WATCH}" '
                f'creationDate="{ws[1]}" startDate="{ws[0]}" endDate="{ws[1]}">\n'
                '   <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
                '   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" '
                f'startDate="{ws[0]}" endDate="{ws[1]}" average="148" minimum="101" '
                'maximum="171" unit="count/min"/>\n'
                '   <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" '
                f'startDate="{ws[0]}" endDate="{ws[1]}" sum="512.4" unit="kcal"/>\n'
                "  </Workout>"
            )
    return out


def write_heavy_export(path: Path, xml_mb: float, seed: int = 11) -> dict[str, int]:
    """Write ``path`` (an export.zip) whose export.xml is about ``xml_mb`` MB; counts by type."""
    rng = np.random.default_rng(seed)
    n_records = int(xml_mb * 1e6 / RECORD_BYTES)
    # days covered: heart rate (45 % of records) every 5 minutes, at most 4 years (a heavier file
    # then has denser records, as a watch plus third-party apps write)
    days = min(4 * 365, max(7, int(n_records * 0.45 * 300 / 86400)))
    counts: dict[str, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    info = zipfile.ZipInfo("apple_health_export/export.xml", date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(path, "w", compresslevel=6) as zf,
        zf.open(info, "w", force_zip64=True) as fh,
    ):
        fh.write(DTD.encode())
        fh.write(b'<HealthData locale="en_US">\n <ExportDate value="2026-01-01 09:00:00 +0100"/>\n')
        fh.write(
            b' <Me HKCharacteristicTypeIdentifierDateOfBirth="1988-04-02" '
            b'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" '
            b'HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" '
            b'HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" '
            b'HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>\n'
        )
        for kind, unit, share, step, (lo, hi), dev in QUANTITIES:
            n = int(n_records * share)
            counts[kind] = n
            span = days * 86400
            for a in range(0, n, 200_000):
                k = min(200_000, n - a)
                t0 = START + (np.arange(a, a + k, dtype=np.int64) * span) // max(n, 1)
                val = rng.uniform(lo, hi, k)
                lines = _quantity(kind, unit, t0, min(step, 60), val, dev)
                fh.write(("\n".join(lines.to_list()) + "\n").encode())
        night_lines = _nights(days, rng)
        counts["nightly records"] = len(night_lines)
        fh.write(("\n".join(night_lines) + "\n").encode())
        fh.write(b"</HealthData>\n")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=250)
    ap.add_argument("--out", type=Path, default=Path("bench/out/apple-250/export.zip"))
    args = ap.parse_args()
    counts = write_heavy_export(args.out, args.mb)
    with zipfile.ZipFile(args.out) as zf:
        size = zf.getinfo("apple_health_export/export.xml").file_size
    print(f"{args.out}: export.xml {size / 1e6:.0f} MB; {counts}")


if __name__ == "__main__":
    main()
