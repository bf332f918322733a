"""Oura ring exports: API v2 JSON (per endpoint or combined) and the older v1 cloud export.

Both shapes are read by classifying each JSON object by its keys rather than by file name or
wrapper, because real dumps come as one file per endpoint, one combined file, or a list around a
dict, and all of them carry the same record kinds. Offsets come from the records' own ISO strings
(``tz_source`` "record"). Sleep phases are 5-minute epochs starting at ``bedtime_start``; runs of
equal epochs become one ``sleep_stage`` row so a night is ~30 rows, not ~100.

Daily documents (readiness, daily sleep, activity) carry only a date: their rows are anchored at
local midnight with the offset of the sleep that ended that day in the same file, so a v1 and a v2
export of one account yield the same ``start_utc`` and hence the same record ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.timeparse import local_to_utc
from tunewell.lake.sleep_rules import assign_nights, summarise_stages

SOURCE = "oura"
PRIORITY = 20
DEVICE = "oura_ring"
EPOCH_S = 300

_KEYS = (
    b'"sleep_phase_5_min"',
    b'"hypnogram_5min"',
    b'"bedtime_start"',
    b'"class_5_min"',
    b'"class_5min"',
    b'"hrv_balance"',
    b'"score_hrv_balance"',
    b'"restfulness"',
    b'"spo2_percentage"',
)
_PHASE = {"1": "deep", "2": "light", "3": "rem", "4": "awake"}
_SLEEP_TYPES = {None, "long_sleep", "sleep", "late_nap"}
# v1 score_* fields renamed to the v2 contributor names, so both exports give one vendor_score name.
_V1_SLEEP_SCORES = {
    "score_total": "total_sleep",
    "score_disturbances": "restfulness",
    "score_efficiency": "efficiency",
    "score_latency": "latency",
    "score_rem": "rem_sleep",
    "score_deep": "deep_sleep",
    "score_alignment": "timing",
}
_V1_READINESS_SCORES = {
    "score_previous_night": "previous_night",
    "score_sleep_balance": "sleep_balance",
    "score_previous_day": "previous_day_activity",
    "score_activity_balance": "activity_balance",
    "score_resting_hr": "resting_heart_rate",
    "score_hrv_balance": "hrv_balance",
    "score_recovery_index": "recovery_index",
    "score_temperature": "body_temperature",
}
_HAS_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[\]}])')


def sniff(path: Path, head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start in (b"{", b"[") and any(k in head for k in _KEYS)


def loads_lenient(text: str) -> Any:
    """Parse JSON, tolerating the trailing commas real Oura exports contain."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        fixed = _TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text)
        try:
            return json.loads(fixed)
        except json.JSONDecodeError as exc:
            raise ReadError(f"not valid JSON even without trailing commas: {exc}") from None


def _kind(rec: dict) -> str | None:
    if "bedtime_start" in rec:
        return "sleep_v1" if "summary_date" in rec else "sleep_v2"
    if "summary_date" in rec:
        if any(k in rec for k in _V1_READINESS_SCORES):
            return "readiness_v1"
        if "steps" in rec or "class_5min" in rec or "cal_total" in rec:
            return "activity_v1"
        return None
    if "day" in rec:
        if "spo2_percentage" in rec:
            return "spo2_v2"
        contrib = rec.get("contributors") or {}
        if "hrv_balance" in contrib or "temperature_deviation" in rec:
            return "readiness_v2"
        if "total_sleep" in contrib or "restfulness" in contrib:
            return "daily_sleep_v2"
        if "class_5_min" in rec or "steps" in rec:
            return "activity_v2"
    return None


def _records(obj: Any) -> Iterator[tuple[str, dict]]:
    if isinstance(obj, list):
        for x in obj:
            yield from _records(x)
    elif isinstance(obj, dict):
        kind = _kind(obj)
        if kind:
            yield kind, obj
        else:
            for v in obj.values():
                if isinstance(v, list | dict):
                    yield from _records(v)


def _ts(s: str | None) -> datetime | None:
    if not s:
        return None
    d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _naive_utc(d: datetime) -> datetime:
    return d.astimezone(UTC).replace(tzinfo=None)


def _offset(d: datetime) -> int:
    off = d.utcoffset() or timedelta(0)
    return int(off.total_seconds() // 60)


def _series(items: list | None, zero_is_none: bool) -> list[float | None]:
    out: list[float | None] = []
    for v in items or []:
        ok = v is not None and not (zero_is_none and v == 0)
        out.append(float(v) if ok else None)
    return out


def _secs_to_min(v: Any) -> float | None:
    return None if v is None else float(v) / 60.0


class _Acc:
    """Column lists filled while walking the JSON, turned into frames once at the end."""

    def __init__(self) -> None:
        self.sleep: dict[str, list] = {
            k: []
            for k in (
                "start",
                "end",
                "off",
                "tib",
                "tst",
                "sol",
                "eff",
                "vid",
                "phases",
                "avg_hrv",
                "hr",
                "hr_t0",
                "hr_dt",
                "hrv",
                "hrv_t0",
                "hrv_dt",
                "temp",
                "breath",
                "v1_scores",
            )
        }
        self.daily: dict[str, list] = {"date": [], "name": [], "value": [], "ts": [], "ts_off": []}
        self.temp: dict[str, list] = {"date": [], "value": [], "ts": [], "ts_off": []}
        self.spo2: dict[str, list] = {"date": [], "value": [], "ts": [], "ts_off": []}
        # Records seen, kept or not: a file of unscored days or rest periods is a valid export
        # with nothing for the lake, not a broken file.
        self.recognised = 0

    def score(self, day: date, name: str, value: Any, stamp: str | None = None) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.daily["name"].append(name)
            self._add(self.daily, day, float(value), stamp)

    def temperature(self, day: date, value: float, stamp: str | None = None) -> None:
        self._add(self.temp, day, value, stamp)

    @staticmethod
    def _add(cols: dict[str, list], day: date, value: float, stamp: str | None) -> None:
        t = _ts(stamp) if stamp and _HAS_OFFSET.search(stamp) else None
        cols["date"].append(day)
        cols["value"].append(value)
        cols["ts"].append(_naive_utc(t) if t else None)
        cols["ts_off"].append(_offset(t) if t else None)


def _add_sleep_v2(acc: _Acc, rec: dict) -> None:
    if rec.get("type") not in _SLEEP_TYPES:
        return
    start, end = _ts(rec.get("bedtime_start")), _ts(rec.get("bedtime_end"))
    if start is None or end is None:
        return
    hr, hrv = rec.get("heart_rate") or {}, rec.get("hrv") or {}
    s = acc.sleep
    s["start"].append(_naive_utc(start))
    s["end"].append(_naive_utc(end))
    s["off"].append(_offset(start))
    s["tib"].append(_secs_to_min(rec.get("time_in_bed")))
    s["tst"].append(_secs_to_min(rec.get("total_sleep_duration")))
    s["sol"].append(_secs_to_min(rec.get("latency")))
    s["eff"].append(rec.get("efficiency"))
    s["vid"].append(str(rec["id"]) if rec.get("id") is not None else None)
    s["phases"].append(rec.get("sleep_phase_5_min"))
    s["avg_hrv"].append(rec.get("average_hrv"))
    for key, part in (("hr", hr), ("hrv", hrv)):
        t0 = _ts(part.get("timestamp")) or start
        s[key].append(_series(part.get("items"), zero_is_none=False))
        s[f"{key}_t0"].append(_naive_utc(t0))
        s[f"{key}_dt"].append(int(part.get("interval") or EPOCH_S))
    s["temp"].append(None)
    s["breath"].append(rec.get("average_breath"))
    s["v1_scores"].append(None)


def _add_sleep_v1(acc: _Acc, rec: dict) -> None:
    start, end = _ts(rec.get("bedtime_start")), _ts(rec.get("bedtime_end"))
    if start is None or end is None:
        return
    s = acc.sleep
    s["start"].append(_naive_utc(start))
    s["end"].append(_naive_utc(end))
    off = _offset(start) if start.utcoffset() is not None else int(rec.get("timezone") or 0)
    s["off"].append(off)
    s["tib"].append(_secs_to_min(rec.get("duration")))
    s["tst"].append(_secs_to_min(rec.get("total")))
    s["sol"].append(_secs_to_min(rec.get("onset_latency")))
    s["eff"].append(rec.get("efficiency"))
    pid = rec.get("period_id")
    s["vid"].append(f"{rec.get('summary_date')}/{pid}" if pid is not None else None)
    s["phases"].append(rec.get("hypnogram_5min"))
    s["avg_hrv"].append(rec.get("rmssd") or None)
    for key, field in (("hr", "hr_5min"), ("hrv", "rmssd_5min")):
        s[key].append(_series(rec.get(field), zero_is_none=True))
        s[f"{key}_t0"].append(_naive_utc(start))
        s[f"{key}_dt"].append(EPOCH_S)
    s["temp"].append(rec.get("temperature_delta"))
    s["breath"].append(rec.get("breath_average") or None)
    scores = {"score": rec.get("score")} | {v2: rec.get(v1) for v1, v2 in _V1_SLEEP_SCORES.items()}
    s["v1_scores"].append(json.dumps(scores))


def _collect(data: Any) -> _Acc:
    acc = _Acc()
    for kind, rec in _records(data):
        acc.recognised += 1
        if kind == "sleep_v2":
            _add_sleep_v2(acc, rec)
        elif kind == "sleep_v1":
            _add_sleep_v1(acc, rec)
        elif kind == "daily_sleep_v2":
            day, stamp = date.fromisoformat(rec["day"]), rec.get("timestamp")
            acc.score(day, "sleep_score", rec.get("score"), stamp)
            for k, v in (rec.get("contributors") or {}).items():
                acc.score(day, f"sleep.{k}", v, stamp)
        elif kind == "readiness_v2":
            day, stamp = date.fromisoformat(rec["day"]), rec.get("timestamp")
            acc.score(day, "readiness_score", rec.get("score"), stamp)
            for k, v in (rec.get("contributors") or {}).items():
                acc.score(day, f"readiness.{k}", v, stamp)
            if rec.get("temperature_deviation") is not None:
                acc.temperature(day, float(rec["temperature_deviation"]), stamp)
        elif kind == "readiness_v1":
            # v1 dates a night (and its readiness) by the evening it started; v2 by the wake day.
            day = date.fromisoformat(rec["summary_date"]) + timedelta(days=1)
            acc.score(day, "readiness_score", rec.get("score"))
            for v1, v2 in _V1_READINESS_SCORES.items():
                acc.score(day, f"readiness.{v2}", rec.get(v1))
        elif kind == "spo2_v2":
            avg = (rec.get("spo2_percentage") or {}).get("average")
            if isinstance(avg, int | float) and avg > 0:
                acc._add(acc.spo2, date.fromisoformat(rec["day"]), float(avg), rec.get("timestamp"))
        elif kind == "activity_v1":
            acc.score(date.fromisoformat(rec["summary_date"]), "activity_score", rec.get("score"))
        elif kind == "activity_v2":
            acc.score(
                date.fromisoformat(rec["day"]),
                "activity_score",
                rec.get("score"),
                rec.get("timestamp"),
            )
    return acc


def _epochs(sleeps: pl.DataFrame) -> pl.DataFrame:
    """One row per 5-minute phase epoch, with its run id within the sleep."""
    return (
        sleeps.select("k", "start", "end", "phases", "off")
        .filter(pl.col("phases").is_not_null() & (pl.col("phases").str.len_chars() > 0))
        .with_columns(pl.col("phases").str.split(""))
        .explode("phases")
        .with_columns(pl.int_range(pl.len()).over("k").alias("i"))
        .with_columns(
            pl.col("phases").replace_strict(_PHASE, default=None).alias("stage"),
            pl.col("phases").rle_id().over("k").alias("run"),
        )
    )


def _stage_stats(ep: pl.DataFrame, stages: pl.DataFrame) -> pl.DataFrame:
    """WASO and awakenings per sleep with a hypnogram (``lake.sleep_rules``); 0 if never asleep."""
    summary = summarise_stages(stages, by="k").select("k", "waso_min", "awakenings")
    return (
        ep.select("k")
        .unique()
        .join(summary, on="k", how="left")
        .with_columns(pl.col("waso_min").fill_null(0.0), pl.col("awakenings").fill_null(0))
    )


def _stages(ep: pl.DataFrame) -> pl.DataFrame:
    return (
        ep.filter(pl.col("stage").is_not_null())
        .group_by("k", "run")
        .agg(
            pl.col("stage").first(),
            (pl.col("start").first() + pl.duration(seconds=pl.col("i").min() * EPOCH_S)).alias(
                "start_utc"
            ),
            (
                pl.col("start").first() + pl.duration(seconds=(pl.col("i").max() + 1) * EPOCH_S)
            ).alias("end_utc"),
            pl.col("end").first().alias("bed_end"),
            pl.col("off").first().alias("utc_offset_min"),
        )
        .with_columns(pl.min_horizontal("end_utc", "bed_end").alias("end_utc"))
        .filter(pl.col("end_utc") > pl.col("start_utc"))
        .drop("run", "bed_end")
        .sort("k", "start_utc")
    )


def _samples(sleeps: pl.DataFrame, key: str) -> pl.DataFrame:
    return (
        sleeps.select("k", "off", pl.col(key).alias("v"), f"{key}_t0", f"{key}_dt")
        .filter(pl.col("v").list.len() > 0)
        .explode("v")
        .with_columns(pl.int_range(pl.len()).over("k").alias("i"))
        .filter(pl.col("v").is_not_null())
        .with_columns(
            (pl.col(f"{key}_t0") + pl.duration(seconds=pl.col(f"{key}_dt") * pl.col("i"))).alias(
                "start_utc"
            )
        )
        .with_columns(
            (pl.col("start_utc") + pl.duration(seconds=pl.col(f"{key}_dt"))).alias("end_utc")
        )
        .select("start_utc", "end_utc", pl.col("off").alias("utc_offset_min"), "v")
    )


def _sleep_frame(acc: _Acc) -> pl.DataFrame:
    s = acc.sleep
    flist = pl.List(pl.Float64)
    return pl.DataFrame(
        {
            "start": pl.Series(s["start"], dtype=pl.Datetime("us")),
            "end": pl.Series(s["end"], dtype=pl.Datetime("us")),
            "off": pl.Series(s["off"], dtype=pl.Int32),
            "tib": pl.Series(s["tib"], dtype=pl.Float64),
            "tst": pl.Series(s["tst"], dtype=pl.Float64),
            "sol": pl.Series(s["sol"], dtype=pl.Float64),
            "eff": pl.Series(s["eff"], dtype=pl.Float64, strict=False),
            "vid": pl.Series(s["vid"], dtype=pl.String),
            "phases": pl.Series(s["phases"], dtype=pl.String),
            "avg_hrv": pl.Series(s["avg_hrv"], dtype=pl.Float64, strict=False),
            "hr": pl.Series(s["hr"], dtype=flist),
            "hr_t0": pl.Series(s["hr_t0"], dtype=pl.Datetime("us")),
            "hr_dt": pl.Series(s["hr_dt"], dtype=pl.Int64),
            "hrv": pl.Series(s["hrv"], dtype=flist),
            "hrv_t0": pl.Series(s["hrv_t0"], dtype=pl.Datetime("us")),
            "hrv_dt": pl.Series(s["hrv_dt"], dtype=pl.Int64),
            "temp": pl.Series(s["temp"], dtype=pl.Float64, strict=False),
            "breath": pl.Series(s["breath"], dtype=pl.Float64, strict=False),
            "v1_scores": pl.Series(s["v1_scores"], dtype=pl.String),
        }
    ).with_row_index("k")


def _record_tz(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.lit("record").alias("tz_source"))


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    try:
        text = ctx.path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text: {exc}") from None
    acc = _collect(loads_lenient(text))
    if not acc.recognised:
        raise ReadError("no Oura sleep, readiness or activity records found")
    if not (acc.sleep["start"] or acc.daily["date"] or acc.temp["date"] or acc.spo2["date"]):
        ctx.notes.append(f"{acc.recognised} Oura record(s) without values to keep (unscored)")
        return

    def conform(df: pl.DataFrame, tbl: str) -> pl.DataFrame:
        return ctx.conform(df, tbl, source=SOURCE, device=DEVICE)

    sleeps = _sleep_frame(acc)
    day_off = pl.DataFrame(schema={"date": pl.Date, "utc_offset_min": pl.Int32})
    if sleeps.height:
        ep = _epochs(sleeps)
        stage_runs = _stages(ep)
        episodes = assign_nights(
            sleeps.rename({"start": "start_utc", "end": "end_utc", "off": "utc_offset_min"})
        ).join(_stage_stats(ep, stage_runs), on="k", how="left")
        day_off = (
            episodes.sort("is_main_sleep", descending=True)
            .unique("sleep_date", keep="first")
            .select(pl.col("sleep_date").alias("date"), "utc_offset_min")
        )
        epi = conform(
            _record_tz(
                episodes.select(
                    "start_utc",
                    "end_utc",
                    "utc_offset_min",
                    "sleep_date",
                    "is_main_sleep",
                    pl.col("tib").alias("tib_min"),
                    pl.col("tst").alias("tst_min"),
                    pl.col("sol").alias("sol_min"),
                    "waso_min",
                    "awakenings",
                    pl.col("eff").alias("efficiency_pct"),
                    pl.col("vid").alias("vendor_episode_id"),
                    "night_rule",
                )
            ),
            "sleep_episode",
        )
        yield "sleep_episode", epi
        ids = episodes.select("k", "sleep_date").with_columns(epi["record_id"].alias("episode_id"))
        stages = stage_runs.join(ids.select("k", "episode_id"), on="k").drop("k")
        yield "sleep_stage", conform(_record_tz(stages), "sleep_stage")
        hrv5 = (
            _samples(sleeps, "hrv")
            .rename({"v": "value_ms"})
            .with_columns(pl.lit("rmssd").alias("metric"), pl.lit("5min").alias("window"))
        )
        nightly = sleeps.filter(pl.col("avg_hrv").is_not_null()).select(
            pl.col("start").alias("start_utc"),
            pl.col("end").alias("end_utc"),
            pl.col("off").alias("utc_offset_min"),
            pl.col("avg_hrv").alias("value_ms"),
            pl.lit("rmssd").alias("metric"),
            pl.lit("nightly").alias("window"),
        )
        yield "hrv", conform(_record_tz(pl.concat([hrv5, nightly])), "hrv")
        hr = (
            _samples(sleeps, "hr")
            .rename({"v": "bpm"})
            .with_columns(pl.lit("sleep").alias("context"))
        )
        yield "heart_rate", conform(_record_tz(hr), "heart_rate")
        # Average breathing rate of each sleep, stamped over that sleep (features count values
        # stamped inside the main sleep as that night's).
        breath = sleeps.filter(pl.col("breath") > 0).select(
            pl.col("start").alias("start_utc"),
            pl.col("end").alias("end_utc"),
            pl.col("off").alias("utc_offset_min"),
            pl.lit("respiration_rate").alias("metric"),
            pl.col("breath").alias("value"),
            pl.lit("rpm").alias("unit"),
        )
        yield "vitals", conform(_record_tz(breath), "vitals")
        v1 = episodes.filter(pl.col("v1_scores").is_not_null())
        for row in v1.select("sleep_date", "v1_scores", "temp").iter_rows():
            scores = json.loads(row[1])
            acc.score(row[0], "sleep_score", scores.pop("score"))
            for k, v in scores.items():
                acc.score(row[0], f"sleep.{k}", v)
            if row[2] is not None:
                acc.temperature(row[0], float(row[2]))
    yield from _daily(acc, day_off, conform, ctx)


def _anchor(df: pl.DataFrame, day_off: pl.DataFrame) -> pl.DataFrame:
    """The document's own timestamp; else local midnight at the offset of that day's sleep.

    Without either, UTC midnight with the offset left to the user's configured zone.
    """
    df = df.join(day_off, on="date", how="left")
    midnight = pl.col("date").cast(pl.Datetime("us"))
    anchored = midnight - pl.duration(minutes=pl.col("utc_offset_min").fill_null(0))
    return (
        df.with_columns(
            pl.coalesce("ts", anchored).alias("start_utc"),
            pl.coalesce("ts_off", "utc_offset_min").alias("utc_offset_min"),
        )
        .with_columns(
            pl.when(pl.col("utc_offset_min").is_not_null())
            .then(pl.lit("record"))
            .alias("tz_source"),
        )
        .drop("ts", "ts_off")
    )


_TS: dict[str, pl.DataType] = {"ts": pl.Datetime("us"), "ts_off": pl.Int32()}


def _daily(
    acc: _Acc, day_off: pl.DataFrame, conform, ctx: FileContext
) -> Iterator[tuple[str, pl.DataFrame]]:
    if acc.daily["date"]:
        scores = pl.DataFrame(
            acc.daily, schema={"date": pl.Date(), "name": pl.String(), "value": pl.Float64()} | _TS
        ).unique(["date", "name"], keep="last", maintain_order=True)
        scores = _anchor(scores, day_off).with_columns(pl.lit("oura").alias("vendor"))
        yield "vendor_score", conform(scores, "vendor_score")
    if acc.temp["date"]:
        temp = pl.DataFrame(
            acc.temp, schema={"date": pl.Date(), "value": pl.Float64()} | _TS
        ).unique("date", keep="last", maintain_order=True)
        temp = (
            _anchor(temp, day_off)
            .drop("date")
            .with_columns(
                pl.lit("temperature_deviation").alias("metric"), pl.lit("degC").alias("unit")
            )
        )
        yield "vitals", conform(temp, "vitals")
    if acc.spo2["date"]:
        # Daily SpO2 is the average over that day's sleep, dated by the day only: a date-level
        # row (local midnight + 24 h), which features use for the night of that date. The API
        # puts it in its own file, without the sleeps' offsets and without a time stamp, so the
        # midnight is the user's zone's rather than UTC's (which is the previous day in the US).
        spo2 = pl.DataFrame(
            acc.spo2, schema={"date": pl.Date(), "value": pl.Float64()} | _TS
        ).unique("date", keep="last", maintain_order=True)
        zone_midnight = local_to_utc(pl.col("date").cast(pl.Datetime("us")), ctx.user)
        spo2 = (
            _anchor(spo2, day_off)
            .with_columns(
                pl.when(pl.col("utc_offset_min").is_null())
                .then(zone_midnight.dt.replace_time_zone(None))
                .otherwise(pl.col("start_utc"))
                .alias("start_utc")
            )
            .drop("date")
            .with_columns(
                (pl.col("start_utc") + pl.duration(days=1)).alias("end_utc"),
                pl.lit("spo2").alias("metric"),
                pl.lit("%").alias("unit"),
            )
        )
        yield "vitals", conform(spo2, "vitals")
