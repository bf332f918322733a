"""Garmin FIT files (activity, monitoring, sleep, HRV status) → silver tables.

Decoding and the verdict on broken files live in ``tunewell.ingest.fit_decode`` (a damaged or
partly readable file is quarantined whole). This module maps messages to tables:

- activity: ``session`` → workout (duration = timer time, ``training_load_peak`` → vendor_load,
  0 counts as "not computed"); ``record.heart_rate`` → heart_rate (context "workout"); ``hrv``
  beat-to-beat times → rr_interval. A ``hrv`` message carries up to five RR values and no time
  stamp, so beat times are accumulated from the first session start (else the first record) over
  the valid values in file order; empty slots (None, 65.535 s) are padding, not beats, and do not
  advance the clock. On the fenix 5 files this puts the last beat within a few seconds of the
  session end, which is the accuracy of that assumption.
- monitoring: ``timestamp_16`` is expanded from the last full timestamp of the monitoring stream
  (``monitoring_info`` or ``monitoring``): full = last + ((ts16 − last) & 0xFFFF). For walking and
  running, ``cycles`` is a running daily total per activity type (steps = cycles × 2, the profile's
  scale); each observation becomes the delta since the previous observation of that type, over the
  interval since the previous monitoring message. A total resets when it drops or the local date
  changes; the first observation of a type counts from 0 only if the file starts at local midnight
  (otherwise it only sets the baseline); a message stamped at local midnight closes the old day.
  Daily summary messages (``duration_min``) are skipped so
  steps are never counted twice. ``heart_rate`` → heart_rate ("sample"); ``stress_level``,
  ``respiration_rate``, ``spo2_data.reading_spo2``, ``monitoring_hr_data`` resting HR and
  ``skin_temp_overnight.average_deviation`` (→ temperature_deviation) → vitals, from whichever
  file carries them. The resting HR is the day's own (``current_day_resting_heart_rate``; the
  7-day average ``resting_heart_rate`` only without it), a row spanning the local day its stamp
  closes (``Clock.day_closed_by``), so it is dated that day and not the next.
- sleep: each ``sleep_level`` holds from its time stamp to the next one; the last runs to the last
  ``event`` stop if that is later. "unmeasurable" intervals give no stage but stay in the time in
  bed. One episode per file; ``sleep_assessment`` fields → vendor_score on its sleep date.
- HRV status: ``hrv_value`` → hrv (rmssd, 5min, start = its time stamp); ``hrv_status_summary``
  ``last_night_average`` → hrv (rmssd, nightly) and every summary field → vendor_score with names
  ``hrv_<field>``; ``hrv_status`` is the profile's code (0 none, 1 poor, 2 low, 3 unbalanced,
  4 balanced).

Time: the SDK returns aware UTC datetimes. The file's local offset comes from the first
``activity``/``monitoring_info``/``timestamp_correlation`` with ``local_timestamp − timestamp``
(tz_source "device"); otherwise the user's zone applies. Old devices write "system time" (seconds
since power-on, < 0x10000000); such files are placed with ``activity.local_timestamp`` read as
wall-clock time in the user's zone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from garmin_fit_sdk import Profile

from tunewell.ingest.base import FileContext
from tunewell.ingest.fit_decode import (
    SYSTEM_TIME_MAX,
    FitMessages,
    decode,
    fit_seconds,
    from_fit_seconds,
)
from tunewell.ingest.timeparse import wall_to_utc, zone_on
from tunewell.lake.frames import conform
from tunewell.lake.sleep_rules import assign_nights, summarise_stages
from tunewell.lake.timezones import offset_of, zone_at, zone_offsets
from tunewell.settings import UserSettings

SOURCE = "garmin_fit"
PRIORITY = 10
UTC_TS = pl.Datetime("us", "UTC")

_STEP_TYPES = {"walking", "running"}
_STAGES = {"awake", "light", "deep", "rem"}
_HRV_STATUS_CODE = {name: code for code, name in Profile["types"]["hrv_status"].items()}
_HRV_SUMMARY_FIELDS = (
    "weekly_average",
    "last_night_average",
    "last_night_5_min_high",
    "baseline_low_upper",
    "baseline_balanced_lower",
    "baseline_balanced_upper",
)
_MAKER_ALIASES = {"wahoo_fitness": "wahoo", "dynastream_oem": "dynastream"}
_MAX_OFFSET_S = 14 * 3600
_OFFSET_SOURCES = ("activity", "monitoring_info", "timestamp_correlation")


def sniff(path: Path, head: bytes) -> bool:
    return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    yield from conform_frames(frames(ctx), ctx.user)


def frames(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    """The per-file half of ``read``: decode and build each table's frame, labelled with the
    file's offset, its hash and its device, but not yet conformed. The runner gathers these from
    many files and conforms each table once (``conform_frames``): per file and table, conform's
    few polars passes were most of the reader's cost on small files."""
    msgs = decode(ctx.path, ctx.display)
    device = device_name(msgs)
    clock = Clock.of(msgs, ctx.user)
    lineage = (
        pl.lit(ctx.sha256, dtype=pl.String).alias("source_file"),
        pl.lit(device, dtype=pl.String).alias("device"),
    )
    for extract in (_activity, _monitoring, _sleep, _hrv_status):
        for table, df in extract(msgs, clock):
            if df.height:
                yield table, clock.label(df).with_columns(lineage)


# A table whose rows refer to another's record ids is conformed after it.
_AFTER = {"sleep_stage": "sleep_episode"}


def conform_frames(
    parts: Iterable[tuple[str, pl.DataFrame]], user: UserSettings
) -> Iterator[tuple[str, pl.DataFrame]]:
    """``frames`` of one or many files of one user → conformed tables, one ``conform`` per table.

    Rows stay in the order they came (file by file), and conform is row by row (zones, ids,
    casts), so the rows equal those of conforming each file's frames alone. A sleep stage's
    ``episode_id`` is its file's episode's record id: a file has one episode, so the stages
    find theirs by the file's hash once the episodes are conformed.
    """
    by: dict[str, list[pl.DataFrame]] = {}
    for table, df in parts:
        by.setdefault(table, []).append(df)
    order = sorted(by, key=lambda t: t in _AFTER)
    episodes: pl.DataFrame | None = None
    for table in order:
        pieces = by[table]
        df = pl.concat(pieces, how="diagonal_relaxed") if len(pieces) > 1 else pieces[0]
        if table == "sleep_stage":
            ids = (
                episodes
                if episodes is not None
                else pl.DataFrame(schema={"source_file": pl.String, "episode_id": pl.String})
            )
            df = df.join(ids, on="source_file", how="left", maintain_order="left")
        out = conform(df, table, user=user, source=SOURCE, source_file="")
        if table == "sleep_episode":
            episodes = out.select("source_file", pl.col("record_id").alias("episode_id"))
        yield table, out


def device_name(msgs: FitMessages) -> str | None:
    """Maker and model, lower case, e.g. "garmin fenix5", "wahoo elemnt", "coros pace 2"."""
    fid = msgs.first("file_id") or {}
    creator = next(
        (d for d in msgs.of("device_info") if d.get("device_index") in ("creator", 0)), {}
    )
    maker = fid.get("manufacturer") or creator.get("manufacturer")
    product = next(
        (
            v
            for v in (
                fid.get("garmin_product"),
                fid.get("product_name"),
                creator.get("garmin_product"),
                creator.get("product_name"),
                fid.get("product"),
            )
            if v not in (None, 0, "")
        ),
        None,
    )
    maker_s = _norm(_MAKER_ALIASES.get(str(maker), str(maker))) if maker is not None else ""
    product_s = _norm(str(product)) if product is not None else ""
    if maker_s and product_s.startswith(maker_s):
        product_s = product_s[len(maker_s) :].strip()
    name = f"{maker_s} {product_s}".strip()
    return name or None


def _norm(s: str) -> str:
    return " ".join(s.replace("_", " ").lower().split())


@dataclass(frozen=True)
class Clock:
    """Turns FIT time values into UTC and labels rows with the file's local offset."""

    offset_min: int | None
    anchor: tuple[int, datetime] | None  # (system seconds, local wall-clock) for system time
    tz: str  # zone in which the anchor's wall-clock time is read
    user: UserSettings
    offset_at: datetime | None = None  # the instant the device's offset was read at

    @classmethod
    def of(cls, msgs: FitMessages, user: UserSettings) -> Clock:
        offset, anchor, offset_at = None, None, None
        for name, m in msgs.ordered:
            if name not in _OFFSET_SOURCES:
                continue
            ts, local = m.get("timestamp"), m.get("local_timestamp")
            if not isinstance(local, int) or local <= 0:
                continue
            if isinstance(ts, datetime) and offset is None:
                diff = local - fit_seconds(ts)
                if abs(diff) <= _MAX_OFFSET_S:
                    offset = round(diff / 900) * 15
                    offset_at = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
            elif isinstance(ts, int) and ts < SYSTEM_TIME_MAX and anchor is None:
                anchor = (ts, from_fit_seconds(local).replace(tzinfo=None))
        tz = user.home_tz if anchor is None else zone_on(user, anchor[1].date())
        return cls(offset, anchor, tz, user, offset_at)

    def utc(self, value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int) and value > 0:
            if value >= SYSTEM_TIME_MAX:
                return from_fit_seconds(value)
            if self.anchor is not None:
                local = self.anchor[1] + timedelta(seconds=value - self.anchor[0])
                return wall_to_utc(local, self.tz)
        return None

    def day_closed_by(self, value: Any) -> tuple[datetime, datetime] | None:
        """The local day a daily log stamped ``value`` covers, as (its start, ``value``) in UTC.

        Garmin stamps monitoring values at the *end* of what they summarise, and a daily log at
        the local midnight that closes its day (the profile's "00:00:00 for daily log"; the real
        vivofit ``MonitoringFile.fit`` stamps its ``duration_min`` 1440 summaries of Dec 27 at
        Dec 28 00:00 local). So the day is the local date one second before the stamp, the same
        rule that ends a day of step totals; a stamp later in the day is that day so far.
        """
        end = self.utc(value)
        if end is None:
            return None
        day = self.local(end - timedelta(seconds=1)).date()
        midnight = datetime.combine(day, time())
        if self.offset_min is not None and not self.zoned:
            return (midnight - timedelta(minutes=self.offset_min)).replace(tzinfo=UTC), end
        # The zone's own midnight: a DST day is 23 or 25 h long.
        return wall_to_utc(midnight, zone_on(self.user, day)), end

    @functools.cached_property
    def zoned(self) -> bool:
        """Whether the user's configured zone agrees with the device at the instant it reported
        (then the zone's rules date the rows, else the device's one offset does)."""
        if self.offset_min is None or not self.user.zone_configured or self.offset_at is None:
            return False
        return offset_of(zone_at(self.user, self.offset_at), self.offset_at) == self.offset_min

    def label(self, df: pl.DataFrame) -> pl.DataFrame:
        """The device's offset on every row; where the user's configured zone agrees with the
        device at the instant it reported, that zone's rules instead, so a daily file across a
        DST change gets the new offset after the change rather than one offset all day."""
        if self.offset_min is None or "utc_offset_min" in df.columns:
            return df
        if self.zoned and df.height:
            zoned = zone_offsets(df.select(pl.col("start_utc").cast(UTC_TS)), self.user)
            return df.with_columns(
                zoned["utc_offset_min"],
                zoned["tz_name"],
                pl.lit("device").alias("tz_source"),
            )
        return df.with_columns(
            pl.lit(self.offset_min, dtype=pl.Int32).alias("utc_offset_min"),
            pl.lit("device").alias("tz_source"),
        )

    def local(self, t: datetime) -> datetime:
        """Local wall-clock time of one UTC instant, by the rule of ``label`` (no polars call:
        readers need it for a handful of instants per file)."""
        if self.offset_min is not None and not self.zoned:
            return (t + timedelta(minutes=self.offset_min)).replace(tzinfo=None)
        return t.astimezone(ZoneInfo(zone_at(self.user, t))).replace(tzinfo=None)


def _frame(rows: dict[str, list]) -> pl.DataFrame:
    """Columns built in a parsing loop → one frame, with UTC instants typed even when empty."""
    return pl.DataFrame(
        {
            k: pl.Series(k, v, dtype=UTC_TS if k in ("start_utc", "end_utc") else None)
            for k, v in rows.items()
        }
    )


# --- activity -------------------------------------------------------------------------------


def _activity(msgs: FitMessages, clock: Clock) -> Iterator[tuple[str, pl.DataFrame]]:
    w: dict[str, list] = {
        k: []
        for k in (
            "start_utc",
            "end_utc",
            "activity",
            "duration_min",
            "avg_hr",
            "max_hr",
            "energy_kcal",
            "distance_m",
            "vendor_load",
        )
    }
    for s in msgs.of("session"):
        start = clock.utc(s.get("start_time"))
        if start is None:
            continue
        elapsed, timer = s.get("total_elapsed_time"), s.get("total_timer_time")
        end = start + timedelta(seconds=elapsed) if elapsed else clock.utc(s.get("timestamp"))
        load = s.get("training_load_peak")
        sport = s.get("sport")
        w["start_utc"].append(start)
        w["end_utc"].append(end)
        w["activity"].append(str(sport).lower() if sport is not None else None)
        w["duration_min"].append((timer or elapsed or 0) / 60 if (timer or elapsed) else None)
        w["avg_hr"].append(s.get("avg_heart_rate") or None)  # 0 = no HR sensor (Zwift)
        w["max_hr"].append(s.get("max_heart_rate") or None)
        w["energy_kcal"].append(s.get("total_calories"))
        w["distance_m"].append(s.get("total_distance"))
        w["vendor_load"].append(load if load else None)
    # Most files of a year are daily monitoring and nightly files: their empty tables cost no
    # polars calls.
    workouts = _frame(w) if w["start_utc"] else None
    if workouts is not None:
        yield "workout", workouts.unique("start_utc", keep="first", maintain_order=True)

    t, bpm = [], []
    first_record: datetime | None = None
    for r in msgs.of("record"):
        ts = clock.utc(r.get("timestamp"))
        if ts is None:
            continue
        first_record = first_record or ts
        if r.get("heart_rate"):
            t.append(ts)
            bpm.append(r["heart_rate"])
    if t:
        hr = _frame({"start_utc": t, "bpm": bpm}).with_columns(context=pl.lit("workout"))
        hr = hr.unique("start_utc", keep="first", maintain_order=True).sort("start_utc")
        yield "heart_rate", hr

    anchor = min(w["start_utc"]) if workouts is not None else first_record
    rr_s = [v for m in msgs.of("hrv") for v in _as_list(m.get("time")) if 0 < v < 65.535]
    if anchor is None or not rr_s:
        return
    rr = pl.DataFrame({"rr_ms": pl.Series(rr_s, dtype=pl.Float64) * 1000}).with_columns(
        start_utc=pl.lit(anchor).cast(UTC_TS)
        + pl.duration(microseconds=(pl.col("rr_ms").cum_sum() * 1000).round().cast(pl.Int64))
    )
    yield "rr_interval", rr


# --- monitoring -----------------------------------------------------------------------------


def _monitoring(msgs: FitMessages, clock: Clock) -> Iterator[tuple[str, pl.DataFrame]]:
    info = msgs.first("monitoring_info") or {}
    local0 = info.get("local_timestamp")
    from_midnight = isinstance(local0, int) and local0 % 86400 == 0
    last_full: int | None = None
    prev_t: datetime | None = None
    cum: dict[str, tuple[int, date | None]] = {}
    steps: dict[str, list] = {"start_utc": [], "end_utc": [], "steps": []}
    hr_t, hr_v = [], []
    for name, m in msgs.ordered:
        if name == "monitoring_info":
            ts = clock.utc(m.get("timestamp"))
            if ts is not None:
                last_full, prev_t = fit_seconds(ts), ts
            continue
        if name != "monitoring":
            continue
        t = clock.utc(m.get("timestamp"))
        if t is None and m.get("timestamp_16") is not None and last_full is not None:
            t = from_fit_seconds(last_full + ((m["timestamp_16"] - last_full) & 0xFFFF))
        if t is None:
            continue
        last_full = fit_seconds(t)
        if m.get("duration_min") is not None or m.get("duration") is not None:
            continue
        if m.get("heart_rate"):
            hr_t.append(t)
            hr_v.append(m["heart_rate"])
        atype = m.get("activity_type")
        total = _steps_total(m)
        if atype in _STEP_TYPES and total is not None:
            day = None  # local day the interval ending at t belongs to (midnight ends a day)
            if clock.offset_min is not None:
                day = (t + timedelta(minutes=clock.offset_min, seconds=-1)).date()
            if atype in cum:
                before, before_day = cum[atype]
                reset = total < before or (day is not None and day != before_day)
                delta: int | None = total if reset else total - before
            else:
                delta = total if from_midnight else None
            cum[atype] = (total, day)
            if delta is not None:
                steps["start_utc"].append(prev_t or t)
                steps["end_utc"].append(t)
                steps["steps"].append(float(delta))
        prev_t = t
    if steps["steps"]:
        yield "steps", _frame(steps)
    if hr_t:
        hr = _frame({"start_utc": hr_t, "bpm": hr_v}).with_columns(context=pl.lit("sample"))
        yield "heart_rate", hr.unique("start_utc", keep="first", maintain_order=True)
    vitals = _vitals(msgs, clock)
    if vitals.height:
        yield "vitals", vitals.unique(["start_utc", "metric"])


def _steps_total(m: dict[str, Any]) -> int | None:
    if m.get("steps") is not None:
        return int(m["steps"])
    if m.get("cycles") is not None:
        return round(m["cycles"] * 2)
    return None


def _vitals(msgs: FitMessages, clock: Clock) -> pl.DataFrame:
    v: dict[str, list] = {"start_utc": [], "end_utc": [], "metric": [], "value": [], "unit": []}

    def add(
        ts: Any, metric: str, value: Any, unit: str, signed: bool = False, end: Any = None
    ) -> None:
        t = clock.utc(ts)
        if t is not None and isinstance(value, int | float) and (signed or value >= 0):
            v["start_utc"].append(t)
            v["end_utc"].append(end)
            v["metric"].append(metric)
            v["value"].append(float(value))
            v["unit"].append(unit)

    for m in msgs.of("stress_level"):
        add(m.get("stress_level_time"), "stress", m.get("stress_level_value"), "score")
    for m in msgs.of("respiration_rate"):
        rate = m.get("respiration_rate")
        add(m.get("timestamp"), "respiration_rate", rate if rate and rate > 0 else None, "rpm")
    for m in msgs.of("monitoring_hr_data"):
        # The day's own value (field 1); field 0 is the 7-day rolling average, kept only for
        # devices that write nothing else.
        rhr = m.get("current_day_resting_heart_rate") or m.get("resting_heart_rate") or None
        day = clock.day_closed_by(m.get("timestamp"))
        if day is not None:
            add(day[0], "resting_hr", rhr, "bpm", end=day[1])
    for m in msgs.of("spo2_data"):  # pulse-ox readings; 0 = no reading
        add(m.get("timestamp"), "spo2", m.get("reading_spo2") or None, "%")
    for m in msgs.of("skin_temp_overnight"):
        # Garmin's own deviation from its baseline. ``nightly_value`` is left out: the profile
        # gives it no unit, and a deviation is what the features need.
        dev = m.get("average_deviation")
        add(m.get("timestamp"), "temperature_deviation", dev, "degC", signed=True)
    return _frame(v)


def _as_list(value: Any) -> list[float]:
    """A FIT field that holds one value or an array of them, without its invalid (None) ones."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if v is not None]


# --- sleep ----------------------------------------------------------------------------------


def _sleep(msgs: FitMessages, clock: Clock) -> Iterator[tuple[str, pl.DataFrame]]:
    levels = sorted(
        (t, str(m.get("sleep_level")))
        for m in msgs.of("sleep_level")
        if (t := clock.utc(m.get("timestamp"))) is not None
    )
    if not any(level in ("light", "deep", "rem", "awake") for _, level in levels):
        # Only "unmeasurable": the watch knows a sleep window but not the sleep. A zero-sleep
        # night would be worse than none (and would outrank another device's real night).
        return
    first = levels[0][0]
    stops = [
        t
        for e in msgs.of("event")
        if e.get("event_type") in ("stop", "stop_all")
        and (t := clock.utc(e.get("timestamp"))) is not None
        and t >= first
    ]
    end = max([levels[-1][0], *stops])
    seq = pl.DataFrame(
        {
            "start_utc": pl.Series([t for t, _ in levels], dtype=UTC_TS),
            "stage": [s for _, s in levels],
        }
    ).with_columns(end_utc=pl.col("start_utc").shift(-1).fill_null(pl.lit(end).cast(UTC_TS)))
    seq = seq.filter(pl.col("end_utc") > pl.col("start_utc")).with_columns(
        run=(pl.col("stage") != pl.col("stage").shift(1)).fill_null(True).cum_sum(),
        minutes=(pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds() / 60,
    )
    stages = seq.filter(pl.col("stage").is_in(_STAGES))
    episode = _episode_metrics(seq, first, end)
    offs = [
        int((clock.local(t) - t.replace(tzinfo=None)).total_seconds() // 60) for t in (first, end)
    ]
    night = assign_nights(
        _frame({"start_utc": [first], "end_utc": [end], "_s": [offs[0]], "_e": [offs[1]]}),
        start_offset="_s",
        end_offset="_e",
    ).row(0, named=True)
    sleep_date = night["sleep_date"]
    episode |= {
        "start_utc": [first],
        "end_utc": [end],
        "sleep_date": [sleep_date],
        "is_main_sleep": [night["is_main_sleep"]],
        "night_rule": [night["night_rule"]],
    }
    yield "sleep_episode", _frame(episode)
    # episode_id: the episode's record id, filled in by ``conform_frames``
    yield "sleep_stage", stages.select("start_utc", "end_utc", "stage")
    assessment = msgs.first("sleep_assessment") or {}
    # Fields the SDK's profile does not name come back keyed by number: not a score we can label.
    scores = {
        k: float(v)
        for k, v in assessment.items()
        if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
    }
    if scores:
        yield (
            "vendor_score",
            _frame(
                {
                    "start_utc": [end] * len(scores),
                    "date": [sleep_date] * len(scores),
                    "vendor": ["garmin"] * len(scores),
                    "name": list(scores),
                    "value": list(scores.values()),
                }
            ),
        )


def _episode_metrics(seq: pl.DataFrame, start: datetime, end: datetime) -> dict[str, list]:
    """TIB and SE from the recorded window; TST, SOL, WASO, awakenings from ``lake.sleep_rules``."""
    tib = (end - start).total_seconds() / 60
    out: dict[str, list] = {
        "tib_min": [tib],
        "tst_min": [0.0],
        "efficiency_pct": [0.0 if tib > 0 else None],
        "sol_min": [None],
        "waso_min": [None],
        "awakenings": [None],
    }
    summary = summarise_stages(seq.with_columns(_night=pl.lit(0)), by="_night", offset=None)
    if summary.is_empty():
        return out
    night = summary.row(0, named=True)
    tst = night["tst_min"]
    out |= {
        "tst_min": [tst],
        "efficiency_pct": [100 * tst / tib if tib > 0 else None],
        "sol_min": [(night["onset_utc"] - start).total_seconds() / 60],
        "waso_min": [night["waso_min"]],
        "awakenings": [night["awakenings"]],
    }
    return out


# --- HRV status -----------------------------------------------------------------------------


def _hrv_status(msgs: FitMessages, clock: Clock) -> Iterator[tuple[str, pl.DataFrame]]:
    if not msgs.of("hrv_value") and not msgs.of("hrv_status_summary"):
        return
    t5, v5 = [], []
    for m in msgs.of("hrv_value"):
        t = clock.utc(m.get("timestamp"))
        if t is not None and m.get("value"):
            t5.append(t)
            v5.append(float(m["value"]))
    values = _frame({"start_utc": t5, "value_ms": v5}).with_columns(
        end_utc=pl.col("start_utc") + pl.duration(minutes=5),
        metric=pl.lit("rmssd"),
        window=pl.lit("5min"),
    )
    nightly: dict[str, list] = {"start_utc": [], "end_utc": [], "value_ms": []}
    scores: dict[str, list] = {"start_utc": [], "date": [], "name": [], "value": []}
    for s in msgs.of("hrv_status_summary"):
        t = clock.utc(s.get("timestamp"))
        if t is None:
            continue
        if s.get("last_night_average"):
            nightly["start_utc"].append(values["start_utc"].min() if values.height else t)
            nightly["end_utc"].append(values["end_utc"].max() if values.height else None)
            nightly["value_ms"].append(float(s["last_night_average"]))
        status = s.get("status")
        fields = {f"hrv_{k}": s.get(k) for k in _HRV_SUMMARY_FIELDS}
        fields["hrv_status"] = _HRV_STATUS_CODE.get(status, status)
        day = clock.local(t).date()
        for name, value in fields.items():
            if isinstance(value, int | float):
                scores["start_utc"].append(t)
                scores["date"].append(day)
                scores["name"].append(name)
                scores["value"].append(float(value))
    night = _frame(nightly).with_columns(metric=pl.lit("rmssd"), window=pl.lit("nightly"))
    hrv = pl.concat([values, night.select(values.columns)], how="vertical_relaxed")
    yield "hrv", hrv.unique(["start_utc", "window"], keep="first", maintain_order=True)
    sc = _frame(scores)
    if sc.height:
        sc = sc.with_columns(pl.col("date").cast(pl.Date), vendor=pl.lit("garmin"))
        yield "vendor_score", sc
