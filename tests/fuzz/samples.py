"""One small real-format sample per reader (synthetic, from ``tunewell.synth``) and the checks a
mutated copy must pass: no exception escapes the run, no hang, nothing written outside the lake,
and every staged row fits its table's schema."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import polars as pl

from tunewell.ingest import runner
from tunewell.lake.frames import empty
from tunewell.settings import Settings, UserSettings
from tunewell.synth import hostile

TIME_LIMIT_S = 30
STATUSES = {"staged", "quarantined", "skipped", "container", "already_seen"}


def samples(root: Path) -> dict[str, Path]:
    """reader -> a small file in its real format (``root`` receives the files)."""
    from tunewell.synth.fitbit import write_fitbit
    from tunewell.synth.gadgetbridge import write_gadgetbridge
    from tunewell.synth.oura import write_oura
    from tunewell.synth.people import simulate
    from tunewell.synth.whoop import write_whoop

    root.mkdir(parents=True, exist_ok=True)
    pop = simulate(1, 7, 5)
    person = pop.people[0]
    out: dict[str, Path] = {}

    def put(name: str, fname: str, data: bytes) -> None:
        (root / fname).write_bytes(data)
        out[name] = root / fname

    night = hostile.apple_xml(
        20,
        extra='<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
        'startDate="2026-05-02 00:00:00 +0000" endDate="2026-05-02 03:00:00 +0000" '
        'value="HKCategoryValueSleepAnalysisAsleepCore"/>\n',
    )
    put("apple_health", "export.xml", night)
    put("garmin_fit", "activity.fit", hostile.fit_file(40))
    fitbit = write_fitbit(pop, person, root / "fitbit")
    out["fitbit_json"] = min(
        (p for p in fitbit if p.suffix == ".json"), key=lambda p: p.stat().st_size
    )
    out["gadgetbridge"] = write_gadgetbridge(pop, person.user_id, root / "gb")[0]
    out["oura"] = min(
        write_oura(pop, person.user_id, root / "oura"), key=lambda p: p.stat().st_size
    )
    out["whoop"] = min(
        write_whoop(pop, person.user_id, root / "whoop"), key=lambda p: p.stat().st_size
    )
    put(
        "beat_csv",
        "RR.csv",
        b",ibi_s,day,time\n1,0.8,1,23:59:59\n2,0.5,1,00:00:00\n3,0.7,2,00:00:01\n",
    )
    put(
        "fitabase",
        "heartrate_seconds_merged.csv",
        b"Id,Time,Value\n7,4/12/2016 7:21:00 AM,97\n7,4/12/2016 7:21:05 AM,102\n",
    )
    put(
        "fitbit_vitals",
        "Daily SpO2 - 2024-01-01.csv",
        b'"timestamp","average_value","lower_bound","upper_bound"\n'
        b"2024-01-11T00:00:00Z,96.5,93.0,99.9\n2024-01-12T00:00:00Z,,,\n",
    )
    from tunewell.synth.labs import write_lab_csv

    out["lab_csv"] = write_lab_csv(root / "labs" / "results.csv", date(2026, 3, 2))
    fhir = Path(__file__).resolve().parents[1] / "data" / "fhir" / "observation-f001-glucose.json"
    put("fhir", "observation.json", fhir.read_bytes())
    saliva = root / "saliva"
    saliva.mkdir()
    (saliva / "sleep.csv").write_text(
        ",In Bed Date,In Bed Time,Out Bed Date,Out Bed Time\n0,1,23:10,2,07:00\n"
    )
    (saliva / "saliva.csv").write_text(
        ",SAMPLES,Cortisol NORM,Melatonin NORM\n1,before sleep,0.03,1e-08\n2,wake up,0.07,6e-09\n"
    )
    out["mmash_saliva"] = saliva / "saliva.csv"
    put("google_fit", "daily.csv", b"Date,Move Minutes count,Step count\n2021-07-01,30,4200\n")
    put(
        "pmdata",
        "wellness.csv",
        b"effective_time_frame,fatigue,mood,readiness,sleep_duration_h,sleep_quality,soreness,"
        b"soreness_area,stress\n2020-01-01T23:30:00.000Z,3,,4,7.5,4,2,[],1\n",
    )
    return out


class HangError(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fire(*_: object) -> None:
        raise HangError(f"no verdict after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_one(path: Path, work: Path, options: dict | None = None) -> list[str]:
    """Stage ``path`` into a fresh lake under ``work``; the problems found (empty: passed)."""
    lake = work / "lake"
    settings = Settings(lake=lake, users={"u1": UserSettings("u1", tz="UTC")})
    before = {p for p in work.iterdir()} | {lake}
    problems: list[str] = []
    try:
        with time_limit(TIME_LIMIT_S):
            staged = runner.stage_file(path, settings.user("u1"), settings, options=options)
    except HangError as exc:
        return [f"hang: {exc}"]
    except Exception as exc:  # the run must never see one
        return [f"escaped: {type(exc).__name__}: {exc}"]
    for s in staged:
        if s.result.status not in STATUSES:
            problems.append(f"status {s.result.status}")
        if s.result.status == "quarantined" and not s.result.code:
            problems.append("quarantined without a code")
        for tbl, parts in s.tables.items():
            want = empty(tbl).schema
            for p in parts:
                got = pl.read_parquet_schema(p)
                if dict(got) != dict(want):
                    problems.append(f"{tbl}: schema {dict(got)} != {dict(want)}")
    stray = {p for p in work.iterdir()} - before
    problems += [f"wrote outside the lake: {p}" for p in stray]
    return problems


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip a byte, delete a run, insert, truncate, or
    duplicate a slice (the mutations that real damage and crafted files produce)."""
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        i = pos % len(buf)
        k = kind % 5
        if k == 0:
            buf[i] = val & 0xFF
        elif k == 1:
            del buf[i : i + 1 + val % 64]
        elif k == 2:
            buf[i:i] = bytes([val & 0xFF]) * (1 + val % 16)
        elif k == 3:
            del buf[i:]
        else:
            buf[i:i] = buf[i : i + 1 + val % 256]
    return bytes(buf)
