"""Apple Health export reader (``export.zip`` or a bare ``export.xml``).

Real exports reach 1–2 GB, so the XML is streamed straight out of the zip member with
``lxml.etree.iterparse`` and every handled element is cleared together with its previous siblings;
rows are collected as plain columns and turned into polars frames in batches of at most
``BATCH_ROWS`` per table. Sleep records, workouts and workout-effort ratings are the exception:
an episode can straddle any batch boundary and a rating must meet its workout, so they are kept
until the end of the file (a few thousand rows per year).

Two defects of real exports are repaired in a stream wrapper before the parser sees the bytes:
the inline DTD that iOS 16+ writes is malformed (an ``ATTLIST`` without its closing ``>``), so the
whole ``<!DOCTYPE …>`` prologue is dropped (nothing in it is needed); and stray C0 control
characters such as ``\\x0b`` (illegal in XML 1.0) are deleted. After that the parse is strict: a
truncated or otherwise broken export raises ``ReadError`` and is quarantined rather than being
ingested half-way without anyone noticing.

What is read and what is not:
- ``export.xml`` Records (heart rate, resting HR, SDNN and its beat-to-beat list, steps,
  respiration, SpO2, sleeping wrist temperature, body mass), sleep analysis, Workouts (with the
  person's ``WorkoutEffortScore`` as ``rpe``). Other record types (walking HR average, energy,
  VO2max …) are ignored; ``ActivitySummary`` rings too.
- ``export_cda.xml`` (clinical documents), ``electrocardiograms/*.csv`` and
  ``workout-routes/*.gpx`` carry nothing the lake has a table for; they are skipped and the
  skipped members are logged at INFO level. Records nested inside a ``Correlation`` are skipped
  because Apple also writes them as top-level records.
- ``clinical-records/*.json`` (FHIR DSTU2 or R4 resources from health providers): lab results
  go to ``lab_result`` through the FHIR reader (``formats.fhir.clinical_records``).

Time zones: Apple writes every date as local time with an offset (``2023-03-04 08:01:02 -0500``).
That offset is sometimes the phone's zone at export time rather than where the sample was taken,
so a ``HKTimeZone`` metadata entry (the zone Apple recorded with the sample, present on sleep and
workouts) wins when present: the offset is then that zone's offset at the sample's UTC instant and
``tz_name`` is set. Otherwise the suffix is used. Either way the UTC instant is exact (the suffix
and the clock time are consistent) and ``tz_source`` is ``record``.

Devices: the ``device`` attribute embeds a memory address that changes between exports
(``<<HKDevice: 0x283c8f1b0>, name:Apple Watch, …, hardware:Watch6,2, …>``); it is reduced to
``"<name> <hardware>"`` in lower case (``"apple watch watch6,2"``), or the lower-cased
``sourceName`` when there is no device, so two exports of one account give the same record ids.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from sys import intern
from typing import IO, cast
from xml.parsers import expat
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from lxml import etree

from tunewell.ingest import safety
from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.formats.fhir import clinical_records
from tunewell.lake.sleep_rules import ASLEEP, assign_nights, minutes_between, summarise_stages
from tunewell.lake.timezones import local_time

SOURCE = "apple_health"
PRIORITY = 10
# Raw rows per flush. Well under the 200k ceiling: each flush briefly holds several copies
# (strings, parsed columns, record ids), so 200k-row flushes alone cost ~250 MB of RSS.
BATCH_ROWS = 50_000
EPISODE_GAP_MIN = 60

log = logging.getLogger(__name__)

_EXPORT_DIR = "apple_health_export"
_DATE_FMT = "%Y-%m-%d %H:%M:%S %z"
# C0 controls except tab, newline and carriage return; never part of a UTF-8 multibyte sequence,
# so deleting them byte-wise is safe.
_CONTROL = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
_DOCTYPE = re.compile(rb"<!DOCTYPE.*?(?=<HealthData[\s>/])", re.S)
_PROLOGUE_LIMIT = 16 * 1024 * 1024

_HK = "HKQuantityTypeIdentifier"
# HealthKit quantity type -> (table, vitals metric or hrv metric)
QUANTITY: dict[str, tuple[str, str | None]] = {
    f"{_HK}HeartRate": ("heart_rate", None),
    f"{_HK}RestingHeartRate": ("vitals", "resting_hr"),
    f"{_HK}HeartRateVariabilitySDNN": ("hrv", "sdnn"),
    f"{_HK}StepCount": ("steps", None),
    f"{_HK}RespiratoryRate": ("vitals", "respiration_rate"),
    f"{_HK}OxygenSaturation": ("vitals", "spo2"),
    f"{_HK}AppleSleepingWristTemperature": ("vitals", "skin_temp"),
    f"{_HK}BodyMass": ("vitals", "weight"),
}
VITAL_UNIT = {
    "resting_hr": "bpm",
    "respiration_rate": "rpm",
    "spo2": "%",
    "skin_temp": "degC",
    "weight": "kg",
}
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
# The person's own 1–10 rating of a workout (iOS 18), stored as a record spanning the workout;
# Apple's EstimatedWorkoutEffortScore is a model output, not a perceived exertion, and is ignored.
EFFORT_TYPE = f"{_HK}WorkoutEffortScore"
_SV = "HKCategoryValueSleepAnalysis"
# Legacy numeric values (HealthKit before the enum names were exported): 0 in bed, 1 asleep,
# 2 awake.
SLEEP_STAGE = {
    f"{_SV}InBed": "in_bed",
    f"{_SV}Asleep": "asleep",
    f"{_SV}AsleepUnspecified": "asleep",
    f"{_SV}AsleepCore": "light",
    f"{_SV}AsleepDeep": "deep",
    f"{_SV}AsleepREM": "rem",
    f"{_SV}Awake": "awake",
    "0": "in_bed",
    "1": "asleep",
    "2": "awake",
}
DISTANCE_M = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "cm": 0.01}
ENERGY_KCAL = {"kcal": 1.0, "Cal": 1.0, "cal": 0.001, "kJ": 1 / 4.184, "J": 1 / 4184}
DURATION_MIN = {"min": 1.0, "s": 1 / 60, "sec": 1 / 60, "hr": 60.0, "h": 60.0, "ms": 1 / 60000}
_SKIPPED_MEMBERS = ("export_cda.xml", "electrocardiograms/", "workout-routes/")


# --------------------------------------------------------------------------------------- sniffing


def _export_member(names: list[str]) -> str | None:
    for n in names:
        parts = Path(n).parts
        if "__MACOSX" in parts or len(parts) < 2:
            continue
        if parts[-1] == "export.xml" and parts[-2] == _EXPORT_DIR:
            return n
    return None


def sniff(path: Path, head: bytes) -> bool:
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as zf:
            return _export_member(zf.namelist()) is not None
    return b"<HealthData" in head


# --------------------------------------------------------------------------------------- stream


class CleanStream:
    """File-like wrapper that drops the DOCTYPE prologue and illegal control characters.

    Exposes only ``read``, which is all ``iterparse`` needs; never returns ``b""`` before EOF even
    when a whole chunk was control characters.
    """

    def __init__(self, raw: IO[bytes], chunk: int = 1 << 20) -> None:
        self._raw = raw
        self._chunk = chunk
        self._buf = b""
        self._pos = 0
        self._prologue_done = False

    def check_prologue(self, display: str) -> None:
        """Refuse entity bombs and external DTDs/entities (safety codes) before parsing: the
        DOCTYPE is dropped below, so a parser would otherwise never say what was wrong."""
        self._prologue_done = True
        raw = self._read_prologue()
        safety.check_xml_prologue(raw, display)
        self._buf, self._pos = _DOCTYPE.sub(b"", raw, count=1), 0

    def _read_prologue(self) -> bytes:
        buf = b""
        while b"<HealthData" not in buf and len(buf) < _PROLOGUE_LIMIT:
            data = self._raw.read(self._chunk)
            if not data:
                break
            buf += data.translate(None, _CONTROL)
        return buf

    def _prologue(self) -> bytes:
        return _DOCTYPE.sub(b"", self._read_prologue(), count=1)

    def _refill(self) -> None:
        if not self._prologue_done:
            self._prologue_done = True
            self._buf, self._pos = self._prologue(), 0
            if self._buf:
                return
        self._buf, self._pos = b"", 0
        while not self._buf:
            data = self._raw.read(self._chunk)
            if not data:
                return
            self._buf = data.translate(None, _CONTROL)

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            self._refill()
        size = len(self._buf) if n is None or n < 0 else n
        out = self._buf[self._pos : self._pos + size]
        self._pos += len(out)
        return out


@contextmanager
def _open_export(path: Path, display: str, notes: list[str]) -> Iterator[IO[bytes]]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            member = _export_member(names)
            if member is None:
                raise ReadError(f"{display}: zip has no {_EXPORT_DIR}/export.xml")
            skipped = [n for n in names if any(s in n for s in _SKIPPED_MEMBERS)]
            if skipped:
                note = (
                    f"skipped {len(skipped)} member(s) without a lake table (CDA, ECG, "
                    f"routes): {', '.join(skipped[:5])}"
                )
                notes.append(note)
                log.info("%s: %s", display, note)
            with safety.open_member(zf, member, display) as fh:  # capped: headers can lie
                yield cast(IO[bytes], fh)
    else:
        with Path(path).open("rb") as fh:
            yield fh


# --------------------------------------------------------------------------------------- parsing


class _Buffer:
    """Rows of one kind of element as tuples; turned into frames of at most ``BATCH_ROWS`` rows.

    A frame is built column by column (the rows transposed by ``zip``, in C): polars' row-wise
    constructor cost more than the rest of a batch's frame work.
    """

    def __init__(self, *cols: str) -> None:
        self.cols = cols
        self.rows: list[tuple[str | None, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, n: int | None = None) -> pl.DataFrame:
        """The first ``n`` rows (all by default) as a frame of strings; they leave the buffer."""
        rows = self.rows[:n]
        del self.rows[:n]  # in place: the parser holds ``rows.append``
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(self.cols)
        return pl.DataFrame(
            [pl.Series(c, v, dtype=pl.String) for c, v in zip(self.cols, columns, strict=True)]
        )


_REC_COLS = ("type", "device_raw", "source_name", "start_s", "end_s", "value", "unit", "hk_tz")
_BEAT_COLS = ("device_raw", "source_name", "start_s", "time", "bpm", "hk_tz")
_WORKOUT_COLS = (
    "device_raw",
    "source_name",
    "start_s",
    "end_s",
    "hk_tz",
    "activity",
    "duration",
    "duration_unit",
    "energy",
    "energy_unit",
    "distance",
    "distance_unit",
    "avg_hr",
    "max_hr",
)
_WANTED = frozenset([*QUANTITY, SLEEP_TYPE, EFFORT_TYPE])
_HELD = frozenset([SLEEP_TYPE, EFFORT_TYPE])
_SDNN = f"{_HK}HeartRateVariabilitySDNN"
_CHUNK = 1 << 20
_UNSET = object()


def _workout_row(a: dict[str, str], tz: str | None, stats: list[dict[str, str]]) -> tuple:
    """A Workout's row; totals moved from attributes into ``WorkoutStatistics`` children in iOS
    16 exports (the first statistic of each kind wins)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for s in stats:
        t = s.get("type", "")
        if t.endswith("HeartRate"):
            found.setdefault("hr", (s.get("average"), s.get("maximum")))
        elif t.endswith("ActiveEnergyBurned"):
            found.setdefault("energy", (s.get("sum"), s.get("unit")))
        elif "Distance" in t:
            found.setdefault("distance", (s.get("sum"), s.get("unit")))
    energy, energy_unit = a.get("totalEnergyBurned"), a.get("totalEnergyBurnedUnit")
    if energy is None and "energy" in found:
        energy, energy_unit = found["energy"]
    distance, distance_unit = a.get("totalDistance"), a.get("totalDistanceUnit")
    if distance is None and "distance" in found:
        distance, distance_unit = found["distance"]
    avg_hr, max_hr = found.get("hr", (None, None))
    return (
        a.get("device"),
        a.get("sourceName"),
        a.get("startDate"),
        a.get("endDate"),
        tz,
        a.get("workoutActivityType"),
        a.get("duration"),
        a.get("durationUnit"),
        energy,
        energy_unit,
        distance,
        distance_unit,
        avg_hr,
        max_hr,
    )


def _parse(
    stream: CleanStream, records: _Buffer, beats: _Buffer, held: _Buffer, workouts: _Buffer
) -> Iterator[None]:
    """Fill the buffers from the XML with expat, yielding after each chunk so the caller can
    turn full buffers into frames.

    No tree is built: the start handler sees each element's attributes as a dict (made in C)
    and keeps only what the tables need, so the per-record Python work is a few comparisons and
    one tuple (measured on a 244 MB export: expat with these handlers 4.8 CPU s, a bare lxml
    ``iterparse`` attribute pass 5.9 s). What is read is what the element tree gave: top-level
    Records (not those inside a ``Correlation``) of the handled types, their first
    ``HKTimeZone`` MetadataEntry, the InstantaneousBeatsPerMinute entries of their
    HeartRateVariabilityMetadataList, and Workouts with their direct MetadataEntry and their
    WorkoutStatistics (direct ones, else those of their WorkoutActivity children).
    """
    depth = 0
    top = -1  # depth of a top-level Record: 2 under a HealthData root, never otherwise
    cur: dict[str, str] | None = None  # the wanted top-level Record being read
    cur_tz: object = _UNSET
    cur_beats: list[tuple[str | None, str | None]] | None = None
    in_list = False
    wk: dict[str, str] | None = None  # the Workout being read
    wk_depth = 0
    wk_tz: object = _UNSET
    wk_direct: list[dict[str, str]] = []
    wk_nested: list[dict[str, str]] = []
    in_activity = False
    add_record, add_held = records.rows.append, held.rows.append

    def start(name: str, a: dict[str, str]) -> None:
        nonlocal depth, top, cur, cur_tz, cur_beats, in_list
        nonlocal wk, wk_depth, wk_tz, wk_direct, wk_nested, in_activity
        depth += 1
        if cur is not None:
            if depth == 3:
                in_list = name == "HeartRateVariabilityMetadataList"
                if name == "MetadataEntry" and cur_tz is _UNSET and a.get("key") == "HKTimeZone":
                    cur_tz = a.get("value")
            elif (
                depth == 4
                and in_list
                and name == "InstantaneousBeatsPerMinute"
                and cur_beats is not None
            ):
                cur_beats.append((a.get("time"), a.get("bpm")))
        elif wk is not None:
            rel = depth - wk_depth
            if rel == 1:
                in_activity = name == "WorkoutActivity"
                if name == "WorkoutStatistics":
                    wk_direct.append(a)
                elif name == "MetadataEntry" and wk_tz is _UNSET and a.get("key") == "HKTimeZone":
                    wk_tz = a.get("value")
            elif rel == 2 and in_activity and name == "WorkoutStatistics":
                wk_nested.append(a)
        elif name == "Record":
            if depth == top and a.get("type") in _WANTED:
                cur, cur_tz = a, _UNSET
                cur_beats = [] if a["type"] == _SDNN else None
        elif name == "Workout":
            wk, wk_depth, wk_tz, wk_direct, wk_nested = a, depth, _UNSET, [], []
        elif depth == 1:
            top = 2 if name == "HealthData" else -1

    def end(name: str) -> None:
        nonlocal depth, cur, cur_beats, wk
        if cur is not None and depth == 2:
            a, tz = cur, None if cur_tz is _UNSET else cast(str | None, cur_tz)
            rtype = a["type"]
            row = (
                intern(rtype),
                _interned(a.get("device")),
                _interned(a.get("sourceName")),
                a.get("startDate"),
                a.get("endDate"),
                a.get("value"),
                _interned(a.get("unit")),
                _interned(tz),
            )
            if rtype in _HELD:
                add_held(row)
            else:
                add_record(row)
                if cur_beats:
                    beats.rows.extend((row[1], row[2], row[3], t, b, row[7]) for t, b in cur_beats)
            cur = cur_beats = None
        elif wk is not None and depth == wk_depth:
            tz = None if wk_tz is _UNSET else cast(str | None, wk_tz)
            workouts.rows.append(_workout_row(wk, tz, wk_direct or wk_nested))
            wk = None
        depth -= 1

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    while data := stream.read(_CHUNK):
        parser.Parse(data, False)
        yield
    parser.Parse(b"", True)


def _lxml_error(ctx: FileContext) -> etree.XMLSyntaxError | None:
    """What lxml says about a document expat refused, so the error (and the quarantine code
    derived from its wording) is the same as when lxml read exports; ``None`` if lxml parses it.
    Only a broken file pays this second parse."""
    try:
        with _open_export(ctx.path, ctx.display, []) as raw:
            stream = CleanStream(raw)
            stream.check_prologue(ctx.display)
            for _, elem in etree.iterparse(
                stream,
                events=("end",),
                huge_tree=True,
                load_dtd=False,
                resolve_entities=False,
                no_network=True,
            ):
                elem.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        return exc
    return None


# --------------------------------------------------------------------------------------- frames


def _device_expr() -> pl.Expr:
    raw = pl.col("device_raw")
    name = raw.str.extract(r"name:([^,>]+)").str.strip_chars()
    hardware = raw.str.extract(r"hardware:([^ ,>]+(?:,[^ ,>]+)*)")
    from_device = pl.concat_str([name, hardware], separator=" ", ignore_nulls=True)
    dev = pl.when(name.is_not_null()).then(from_device).otherwise(pl.col("source_name"))
    # "Ann’s iPhone" → "iphone": the owner's name is personal data and changes with a rename.
    owner = r"^[^'’]{1,40}['’]s\s+"
    dev = dev.str.replace(owner, "").str.replace_all(r"\s+", " ")  # incl. no-break spaces
    return dev.str.to_lowercase().str.strip_chars().alias("device")


def _suffix_offset(col: str) -> pl.Expr:
    suffix = pl.col(col).str.strip_chars().str.slice(-5)
    sign = pl.when(suffix.str.slice(0, 1) == "-").then(-1).otherwise(1)
    hh = suffix.str.slice(1, 2).cast(pl.Int32, strict=False)
    mm = suffix.str.slice(3, 2).cast(pl.Int32, strict=False)
    return (sign * (hh * 60 + mm)).cast(pl.Int32)


def _valid_zones(names: list[str | None]) -> list[str]:
    zones = []
    for z in names:
        if not z:
            continue
        try:
            ZoneInfo(z)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        zones.append(z)
    return zones


def _zone_offset(utc_col: str, suffix: pl.Expr, zones: list[str]) -> pl.Expr:
    """Offset at a UTC instant: that of the recorded ``HKTimeZone`` if known, else the suffix."""
    offset = suffix
    for z in zones:
        local = pl.col(utc_col).dt.convert_time_zone(z).dt.replace_time_zone(None)
        in_zone = (local - pl.col(utc_col).dt.replace_time_zone(None)).dt.total_minutes()
        offset = pl.when(pl.col("hk_tz") == z).then(in_zone).otherwise(offset)
    return offset.cast(pl.Int32)


def _with_time(df: pl.DataFrame, end: bool = True, end_offset: bool = False) -> pl.DataFrame:
    """Parse the local-with-offset strings to UTC and label the offset (see module docstring).

    ``end_offset`` adds ``end_off``, the offset at the end instant: a sleep record that spans a
    DST change or a flight ends on a different clock than it started on.
    """
    df = df.with_columns(
        pl.col("start_s")
        .str.to_datetime(_DATE_FMT, strict=False, time_unit="us")
        .dt.convert_time_zone("UTC")
        .alias("start_utc"),
        _suffix_offset("start_s").alias("suffix_off"),
        _device_expr(),
    )
    if end:
        df = df.with_columns(
            pl.col("end_s")
            .str.to_datetime(_DATE_FMT, strict=False, time_unit="us")
            .dt.convert_time_zone("UTC")
            .alias("end_utc")
        )
    zones = _valid_zones(df["hk_tz"].unique().to_list())
    if end and end_offset:
        df = df.with_columns(
            _zone_offset("end_utc", _suffix_offset("end_s"), zones).alias("end_off")
        )
    known = pl.col("hk_tz").is_in(zones) if zones else pl.lit(False)
    return df.with_columns(
        _zone_offset("start_utc", pl.col("suffix_off"), zones).alias("utc_offset_min"),
        pl.when(known).then(pl.col("hk_tz")).otherwise(None).alias("tz_name"),
        pl.lit("record").alias("tz_source"),
    )


_TZ = ["device", "start_utc", "end_utc", "utc_offset_min", "tz_name", "tz_source"]


def _records_frames(ctx: FileContext, raw: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    df = (
        _with_time(raw)
        .with_columns(
            pl.col("value").cast(pl.Float64, strict=False),
            pl.col("type")
            .replace_strict({k: v[1] for k, v in QUANTITY.items()}, default=None)
            .alias("metric"),
        )
        .filter(pl.col("value").is_not_null())
    )
    point_end = (
        pl.when(pl.col("end_utc") == pl.col("start_utc"))
        .then(None)
        .otherwise(pl.col("end_utc"))
        .alias("end_utc")
    )
    tables = {
        t: df.filter(pl.col("type").is_in([k for k, v in QUANTITY.items() if v[0] == t]))
        for t in ("heart_rate", "vitals", "hrv", "steps")
    }
    if tables["heart_rate"].height:
        # Apple writes count/min; a third-party app may write count/s (HealthKit converts both).
        per_s = pl.col("unit").str.strip_chars() == "count/s"
        hr = tables["heart_rate"].with_columns(
            point_end,
            bpm=pl.when(per_s).then(pl.col("value") * 60).otherwise(pl.col("value")),
            context=pl.lit("sample"),
        )
        yield "heart_rate", _conform(ctx, hr, "heart_rate", ["bpm", "context"])
    if tables["steps"].height:
        st = tables["steps"].with_columns(steps=pl.col("value"))
        yield "steps", _conform(ctx, st, "steps", ["steps"])
    if tables["hrv"].height:
        hv = tables["hrv"].with_columns(point_end, value_ms=pl.col("value"), window=pl.lit("spot"))
        yield "hrv", _conform(ctx, hv, "hrv", ["metric", "window", "value_ms"])
    if tables["vitals"].height:
        v = tables["vitals"].with_columns(
            point_end, value=_vital_value(), unit=pl.col("metric").replace_strict(VITAL_UNIT)
        )
        yield "vitals", _conform(ctx, v, "vitals", ["metric", "value", "unit"])


def _vital_value() -> pl.Expr:
    """SpO2 is a fraction in HealthKit; temperature and body mass may come in US units."""
    v, unit, metric = pl.col("value"), pl.col("unit"), pl.col("metric")
    return (
        pl.when((metric == "spo2") & (v <= 1.0))
        .then(v * 100)
        .when((metric == "skin_temp") & (unit == "degF"))
        .then((v - 32) * 5 / 9)
        .when((metric == "weight") & (unit == "lb"))
        .then(v * 0.45359237)
        .when((metric == "weight") & (unit == "g"))
        .then(v / 1000)
        .otherwise(v)
    )


def _conform(ctx: FileContext, df: pl.DataFrame, table: str, cols: list[str]) -> pl.DataFrame:
    return ctx.conform(df.select(_TZ + cols), table, source=SOURCE)


def _beat_frame(ctx: FileContext, raw: pl.DataFrame) -> pl.DataFrame:
    """Beat times are clock times (``h:mm:ss.SS AM``) on the local date of the SDNN record.

    They are written in the same zone as the record's date suffix, so that suffix converts them
    to UTC; a beat whose clock time is before the record's start crossed midnight. Precision: Apple
    exports whole bpm, so rr_ms = 60000 / bpm is quantised (about 16 ms per bpm at 60 bpm) and
    is an instantaneous-rate estimate, not a measured R–R interval; times have 10 ms resolution.
    """
    df = _with_time(raw, end=False)
    t = (
        pl.col("time")
        .str.replace_all("\u202f", " ")
        .str.replace_all("\u00a0", " ")
        .str.strip_chars()
        .str.to_uppercase()
    )
    twelve = t.str.contains("[AP]M$")
    clock = pl.col("start_s").str.slice(0, 10) + " " + t
    local = pl.coalesce(
        pl.when(twelve).then(clock.str.to_datetime("%Y-%m-%d %I:%M:%S%.f %p", strict=False)),
        pl.when(~twelve).then(clock.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False)),
    ).dt.cast_time_unit("us")
    start_local = local_time("start_utc", "suffix_off")
    local = (
        pl.when(local < start_local - pl.duration(hours=12))
        .then(local + pl.duration(days=1))
        .otherwise(local)
    )
    df = df.with_columns(
        (local - pl.duration(minutes=pl.col("suffix_off")))
        .dt.replace_time_zone("UTC")
        .alias("start_utc"),
        (60000.0 / pl.col("bpm").cast(pl.Float64, strict=False)).alias("rr_ms"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("end_utc"),
    ).filter(pl.col("start_utc").is_not_null() & pl.col("rr_ms").is_finite())
    return _conform(ctx, df, "rr_interval", ["rr_ms"])


def _effort_rpe(workouts: pl.DataFrame, effort: pl.DataFrame) -> pl.DataFrame:
    """Attach an effort rating to the workout whose time span contains the rating's start."""
    if effort.is_empty():
        return workouts.with_columns(rpe=pl.lit(None, dtype=pl.Float64))
    ef = effort.select(
        pl.col("start_s")
        .str.to_datetime(_DATE_FMT, strict=False, time_unit="us")
        .dt.convert_time_zone("UTC")
        .alias("t"),
        pl.col("value").cast(pl.Float64, strict=False).alias("rpe"),
    ).drop_nulls()
    spans = workouts.select("start_utc", "end_utc").unique().drop_nulls()
    matched = (
        spans.join_where(ef, pl.col("t") >= pl.col("start_utc"), pl.col("t") <= pl.col("end_utc"))
        .sort("t")
        .group_by("start_utc", "end_utc")
        .agg(pl.col("rpe").last())
    )
    return workouts.join(matched, on=["start_utc", "end_utc"], how="left", nulls_equal=False)


def _workout_frame(ctx: FileContext, raw: pl.DataFrame, effort: pl.DataFrame) -> pl.DataFrame:
    num = {
        c: pl.col(c).cast(pl.Float64, strict=False)
        for c in ("duration", "energy", "distance", "avg_hr", "max_hr")
    }
    activity = (
        pl.col("activity")
        .str.replace(r"^HKWorkoutActivityType", "")
        .str.replace_all(r"([a-z0-9])([A-Z])", "${1}_${2}")
        .str.to_lowercase()
    )
    elapsed = (pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 60
    df = _with_time(raw).with_columns(
        activity=activity,
        duration_min=pl.coalesce(
            num["duration"]
            * pl.col("duration_unit").replace_strict(
                DURATION_MIN, default=None, return_dtype=pl.Float64
            ),
            elapsed,
        ),
        energy_kcal=num["energy"]
        * pl.col("energy_unit").replace_strict(ENERGY_KCAL, default=None, return_dtype=pl.Float64),
        distance_m=num["distance"]
        * pl.col("distance_unit").replace_strict(DISTANCE_M, default=None, return_dtype=pl.Float64),
        avg_hr=num["avg_hr"],
        max_hr=num["max_hr"],
    )
    cols = ["activity", "duration_min", "energy_kcal", "distance_m", "avg_hr", "max_hr", "rpe"]
    return _conform(ctx, _effort_rpe(df, effort), "workout", cols)


# --------------------------------------------------------------------------------------- sleep


def sleep_frames(ctx: FileContext, raw: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """Group the export's sleep intervals into episodes (gaps under 60 min join) and summarise.

    All devices of the export are grouped together, as the Health app shows a night: an iPhone's
    ``InBed`` record and the Watch's staged sleep of the same night are one episode (TIB from the
    whole span, TST from the asleep stages), not two overlapping ones. The episode's device is
    the one that scored sleep. TST, WASO and awakenings are ``lake.sleep_rules`` over the
    episode's stages, so overlapping records are not counted twice; TIB spans the whole episode
    including ``InBed``. Episodes with only ``InBed`` keep TIB and leave the sleep measures null.
    """
    st = _sleep_intervals(raw)
    if st.is_empty():
        return
    ep = _sleep_episodes(st)
    cols = [
        "sleep_date",
        "is_main_sleep",
        "tib_min",
        "tst_min",
        "sol_min",
        "waso_min",
        "awakenings",
        "efficiency_pct",
        "night_rule",
    ]
    episodes = _conform(ctx, ep, "sleep_episode", cols)
    ids = ep.select("ep").with_columns(episodes["record_id"].alias("episode_id"))
    stages = st.join(ids, on="ep", how="left")
    yield "sleep_episode", episodes
    yield "sleep_stage", _conform(ctx, stages, "sleep_stage", ["stage", "episode_id"])


def _sleep_intervals(raw: pl.DataFrame) -> pl.DataFrame:
    """Sleep records as stage intervals, numbered into episodes (``ep``) by start order."""
    st = (
        _with_time(raw, end_offset=True)
        .with_columns(pl.col("value").replace_strict(SLEEP_STAGE, default=None).alias("stage"))
        .filter(
            pl.col("stage").is_not_null()
            & pl.col("start_utc").is_not_null()
            & pl.col("end_utc").is_not_null()
        )
        .sort(["start_utc", "end_utc"])
    )
    prev_end = pl.col("end_utc").cum_max().shift(1)
    new_ep = prev_end.is_null() | (
        pl.col("start_utc") - prev_end >= pl.duration(minutes=EPISODE_GAP_MIN)
    )
    return st.with_columns(new_ep.cast(pl.Int32).cum_sum().alias("ep"))


def _sleep_episodes(st: pl.DataFrame) -> pl.DataFrame:
    """One row per episode: its span, offsets, scoring device, night and stage summary."""
    sleep_device = (
        st.filter(pl.col("stage").is_in(ASLEEP))
        .group_by("ep")
        .agg(pl.col("device").mode().sort().first().alias("sleep_device"))
    )
    summary = summarise_stages(st, by="ep").select(
        "ep", "tst_min", "onset_utc", "waso_min", "awakenings"
    )
    ep = (
        st.group_by("ep")
        .agg(
            pl.col("device").mode().sort().first().alias("any_device"),
            pl.col("start_utc").min(),
            pl.col("end_utc").max(),
            pl.col("utc_offset_min").sort_by("start_utc").first(),
            pl.col("tz_name").sort_by("start_utc").first(),
            pl.col("tz_source").first(),
            pl.col("end_off").sort_by("end_utc").last(),
        )
        .join(sleep_device, on="ep", how="left")
        .join(summary, on="ep", how="left")
        .with_columns(
            pl.coalesce("sleep_device", "any_device").alias("device"),
            minutes_between("start_utc", "end_utc").alias("tib_min"),
            minutes_between("start_utc", "onset_utc").alias("sol_min"),
        )
        .with_columns(
            (pl.col("tst_min") / pl.col("tib_min") * 100)
            .clip(upper_bound=100)
            .alias("efficiency_pct"),
        )
    )
    return assign_nights(ep, end_offset="end_off").sort("ep")


# --------------------------------------------------------------------------------------- read


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    records = _Buffer(*_REC_COLS)
    beats = _Buffer(*_BEAT_COLS)
    held = _Buffer(*_REC_COLS)  # sleep and effort records, needed whole at the end
    workouts = _Buffer(*_WORKOUT_COLS)
    try:
        with _open_export(ctx.path, ctx.display, ctx.notes) as raw:
            stream = CleanStream(raw)
            stream.check_prologue(ctx.display)
            for _ in _parse(stream, records, beats, held, workouts):
                while len(records) >= BATCH_ROWS:
                    yield from _records_frames(ctx, records.take(BATCH_ROWS))
                while len(beats) >= BATCH_ROWS:
                    yield "rr_interval", _beat_frame(ctx, beats.take(BATCH_ROWS))
    except expat.ExpatError as exc:
        lxml_exc = _lxml_error(ctx)
        reason = lxml_exc or exc
        raise ReadError(
            f"{ctx.display}: not a readable Apple Health export.xml ({reason})"
        ) from reason
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ReadError(f"{ctx.display}: broken zip archive ({exc})") from exc
    if len(records):
        yield from _records_frames(ctx, records.take())
    if len(beats):
        yield "rr_interval", _beat_frame(ctx, beats.take())
    kept = held.take()
    if len(workouts):
        effort = kept.filter(pl.col("type") == EFFORT_TYPE)
        yield "workout", _workout_frame(ctx, workouts.take(), effort)
    sleep = kept.filter(pl.col("type") == SLEEP_TYPE)
    if sleep.height:
        yield from sleep_frames(ctx, sleep)
    if zipfile.is_zipfile(ctx.path):
        with zipfile.ZipFile(ctx.path) as zf:
            yield from clinical_records(ctx, zf, SOURCE)


def _interned(value: str | None) -> str | None:
    """Device, source, type and unit repeat on every row; interned, a 50k-row buffer holds one
    copy of a 130-character device string instead of 50k."""
    return None if value is None else intern(value)
