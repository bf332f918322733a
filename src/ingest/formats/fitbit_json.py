"""Fitbit account export / Google Takeout JSON (and PMData's copies of it) and ``sleep_score.csv``.

One file holds one data type, so the type is told apart by the JSON keys at the start of the file:
sleep logs (``logId`` + ``dateOfSleep``), exercise logs (``logId`` + ``activityName``), heart rate
(``bpm`` + ``confidence``), resting heart rate (``value`` is an object with a ``date``) and minute
steps (``value`` is a string). Daily minute counts (sedentary, distance …) have the same shape as
steps, so steps additionally need a file name starting with ``steps``.

Time zones: Fitbit writes sleep, steps, exercise and even ``sleep_score.csv`` (whose timestamps end
in ``Z`` but equal the sleep log's local ``endTime``) in the wearer's local clock without an offset;
only ``heart_rate`` is in UTC. Local times are therefore turned into UTC with the user's configured
zone history, and the offset columns are left to ``conform`` (tz_source user_setting).

Sleep stages: stage logs map wake/light/deep/rem to awake/light/deep/rem. Classic logs map asleep
to asleep and both restless and awake to awake, because Fitbit itself counts restless minutes as
not asleep (``minutesAwake`` = restless + awake minutes), so the stages agree with the vendor's
``minutesAsleep``. ``shortData`` holds wakes shorter than 3 min that Fitbit overlays on the long
stage runs and counts in its wake summary; we apply the same overlay on a 30 s epoch grid, so the
stage table has no overlapping intervals and its wake minutes match the vendor's summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.timeparse import local_to_utc, parse_local, require_times
from tunewell.lake.sleep_rules import assign_nights, summarise_stages

SOURCE = "fitbit"
PRIORITY = 30
EPOCH_S = 30

STAGE_MAP = {
    "wake": "awake",
    "awake": "awake",
    "restless": "awake",
    "light": "light",
    "deep": "deep",
    "rem": "rem",
    "asleep": "asleep",
}
SCORE_COLUMNS = (
    "overall_score",
    "composition_score",
    "revitalization_score",
    "duration_score",
    "deep_sleep_in_minutes",
    "resting_heart_rate",
    "restlessness",
)
DISTANCE_M = {"kilometer": 1000.0, "mile": 1609.344, "meter": 1.0, "km": 1000.0, "mi": 1609.344}

_KEY = {
    k: re.compile(rb'"' + k.encode() + rb'"\s*:')
    for k in ("logId", "dateOfSleep", "activityName", "bpm", "confidence", "dateTime")
}
_RHR = re.compile(rb'"value"\s*:\s*\{\s*"date"\s*:')
_STRING_VALUE = re.compile(rb'"dateTime"\s*:\s*"[^"]*"\s*,\s*"value"\s*:\s*"')


def kind(path: Path, head: bytes) -> str | None:
    """Which Fitbit file this is, from its first bytes (None: not one we read)."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"timestamp,sleep_log_entry_id,overall_score"):
        return "sleep_score"
    if not text.startswith(b"["):
        return None
    has = {k: bool(p.search(text)) for k, p in _KEY.items()}
    if has["logId"] and has["dateOfSleep"]:
        return "sleep"
    if has["logId"] and has["activityName"]:
        return "exercise"
    if has["bpm"] and has["confidence"] and has["dateTime"]:
        return "heart_rate"
    if _RHR.search(text):
        return "resting_heart_rate"
    if _STRING_VALUE.search(text) and Path(path).name.lower().startswith("steps"):
        return "steps"
    return None


def sniff(path: Path, head: bytes) -> bool:
    return kind(path, head) is not None


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    with ctx.path.open("rb") as fh:
        head = fh.read(64 * 1024)
    k = kind(ctx.path, head)
    if k == "sleep_score":
        yield "vendor_score", _sleep_score(ctx)
        return
    if k == "heart_rate":
        yield "heart_rate", _heart_rate(ctx)
        return
    if k == "steps":
        yield "steps", _steps(ctx)
        return
    entries = _load_list(ctx)
    if k == "sleep":
        yield from _sleep(ctx, entries)
    elif k == "exercise":
        yield "workout", _exercise(ctx, entries)
    elif k == "resting_heart_rate":
        yield "vitals", _resting_hr(ctx, entries)
    else:
        raise ReadError(f"{ctx.display}: not a Fitbit JSON file this reader knows")


def _load_list(ctx: FileContext) -> list[dict]:
    try:
        with ctx.path.open("rb") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReadError(f"{ctx.display}: invalid JSON ({exc})") from exc
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ReadError(f"{ctx.display}: expected a JSON list of objects")
    return data


def _read_frame(ctx: FileContext, needed: tuple[str, ...]) -> pl.DataFrame:
    try:
        df = pl.read_json(ctx.path)
    except Exception as exc:
        raise ReadError(f"{ctx.display}: invalid JSON ({exc})") from exc
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ReadError(f"{ctx.display}: missing fields {missing}")
    return df


# ---------------------------------------------------------------- sleep


def _pluck(entries: list[dict], fields: dict[str, str]) -> dict[str, list]:
    """Columns ``{column: [entry[key] …]}`` from JSON entries (missing keys become null)."""
    return {col: [e.get(key) for e in entries] for col, key in fields.items()}


_SLEEP_FIELDS = {
    "date_of_sleep": "dateOfSleep",
    "start": "startTime",
    "end": "endTime",
    "duration_ms": "duration",
    "tst": "minutesAsleep",
    "tib": "timeInBed",
    "sol": "minutesToFallAsleep",
    "waso": "minutesAwake",
    "main": "mainSleep",
    "vendor_eff": "efficiency",
}
_EXERCISE_FIELDS = {
    "start": "startTime",
    "duration_ms": "duration",
    "activity": "activityName",
    "avg_hr": "averageHeartRate",
    "kcal": "calories",
    "distance": "distance",
    "unit": "distanceUnit",
}


def _sleep(ctx: FileContext, entries: list[dict]) -> Iterator[tuple[str, pl.DataFrame]]:
    """Sleep logs → episodes, stages and Fitbit's own efficiency: parse, episodes, conform."""
    parsed = _parse_sleep_logs(ctx, entries)
    if parsed is None:
        return
    logs, levels = parsed
    stages = _stage_runs(levels)
    ep = _sleep_episodes(ctx, logs, stages)
    episodes = ctx.conform(
        ep.select(
            "start_utc",
            "end_utc",
            "sleep_date",
            "is_main_sleep",
            tib_min=pl.col("tib"),
            tst_min=pl.col("tst"),
            sol_min=pl.col("sol"),
            waso_min=pl.col("waso"),
            awakenings=pl.col("awakenings"),
            efficiency_pct=pl.when(pl.col("tib") > 0).then(pl.col("tst") / pl.col("tib") * 100),
            vendor_episode_id=pl.col("log_id"),
            night_rule=pl.col("night_rule"),
        ),
        "sleep_episode",
        source=SOURCE,
    )
    yield "sleep_episode", episodes
    if stages.height:
        ids = episodes.select(log_id="vendor_episode_id", episode_id="record_id").with_columns(
            _off=ep["_off"]
        )
        st = stages.join(ids, on="log_id", how="inner").select(
            start_utc=_minus(pl.col("start_local"), pl.col("_off")),
            end_utc=_minus(pl.col("end_local"), pl.col("_off")),
            stage=pl.col("stage"),
            episode_id=pl.col("episode_id"),
        )
        yield "sleep_stage", ctx.conform(st, "sleep_stage", source=SOURCE)
    yield from _vendor_efficiency(ctx, ep)


def _parse_sleep_logs(
    ctx: FileContext, entries: list[dict]
) -> tuple[pl.DataFrame, dict[str, list]] | None:
    """One row per sleep log (local clock times) and its stage levels as columns; None if empty."""
    logs: dict[str, dict] = {}
    lv: dict[str, list] = {k: [] for k in ("log_id", "at", "level", "seconds", "short")}
    for e in entries:
        if "logId" not in e or "startTime" not in e:
            raise ReadError(f"{ctx.display}: sleep log without logId/startTime")
        log_id = str(e["logId"])
        if log_id in logs:  # PMData repeats logs at month boundaries; the first copy is kept
            continue
        logs[log_id] = e
        levels = e.get("levels") or {}
        for short, key in ((False, "data"), (True, "shortData")):
            for d in levels.get(key) or []:
                lv["log_id"].append(log_id)
                lv["at"].append(d.get("dateTime"))
                lv["level"].append(d.get("level"))
                lv["seconds"].append(d.get("seconds"))
                lv["short"].append(short)
    if not logs:
        return None
    cols = {"log_id": list(logs)} | _pluck(list(logs.values()), _SLEEP_FIELDS)
    ep = pl.DataFrame(
        cols,
        schema_overrides={
            "date_of_sleep": pl.String,
            "start": pl.String,
            "end": pl.String,
            "duration_ms": pl.Int64,
            "tst": pl.Float64,
            "tib": pl.Float64,
            "sol": pl.Float64,
            "waso": pl.Float64,
            "main": pl.Boolean,
            "vendor_eff": pl.Float64,
        },
    )
    ep = ep.with_columns(start_local=parse_local(pl.col("start"))).with_columns(
        end_local=pl.coalesce(
            parse_local(pl.col("end")),
            pl.col("start_local") + pl.duration(milliseconds=pl.col("duration_ms")),
        )
    )
    require_times(ctx, ep, "start_local")
    require_times(ctx, ep, "end_local")
    return ep, lv


def _sleep_episodes(ctx: FileContext, ep: pl.DataFrame, stages: pl.DataFrame) -> pl.DataFrame:
    """Logs with awakenings, UTC times and their night (``lake.sleep_rules``)."""
    ep = ep.join(_awakenings(stages), on="log_id", how="left").with_columns(
        awakenings=pl.col("awakenings").fill_null(0)
    )
    # A log keeps one clock offset throughout (its epochs run on across a DST change), so the
    # offset at the episode's start converts every time in it.
    ep = ep.with_columns(
        _off=pl.col("start_local")
        - local_to_utc(pl.col("start_local"), ctx.user).dt.replace_time_zone(None)
    ).with_columns(
        start_utc=_minus(pl.col("start_local"), pl.col("_off")),
        end_utc=_minus(pl.col("end_local"), pl.col("_off")),
        _off_min=pl.col("_off").dt.total_minutes(),
    )
    return assign_nights(ep, start_offset="_off_min").sort("start_local")


def _vendor_efficiency(ctx: FileContext, ep: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """Fitbit's own efficiency is not TST/TIB (it ignores short wakes); kept for comparison."""
    vendor = ep.filter(pl.col("main").fill_null(False) & pl.col("vendor_eff").is_not_null())
    if vendor.height:
        vs = vendor.select(
            start_utc=_minus(pl.col("end_local"), pl.col("_off")),
            date=pl.coalesce(
                pl.col("date_of_sleep").str.to_date(strict=False), pl.col("sleep_date")
            ),
            vendor=pl.lit("fitbit"),
            name=pl.lit("sleep_efficiency"),
            value=pl.col("vendor_eff"),
        )
        yield (
            "vendor_score",
            ctx.conform(vs, "vendor_score", source=SOURCE).unique(
                "record_id", keep="first", maintain_order=True
            ),
        )


def _minus(local: pl.Expr, offset: pl.Expr) -> pl.Expr:
    return (local - offset).dt.replace_time_zone("UTC")


def _stage_runs(lv: dict[str, list]) -> pl.DataFrame:
    """Stage intervals with ``shortData`` wakes overlaid, via a 30 s epoch grid."""
    schema: dict[str, pl.DataType] = {
        "log_id": pl.String(),
        "stage": pl.String(),
        "start_local": pl.Datetime("us"),
        "end_local": pl.Datetime("us"),
    }
    if not lv["log_id"]:
        return pl.DataFrame(schema=schema)
    raw = pl.DataFrame(
        lv,
        schema_overrides={
            "at": pl.String,
            "level": pl.String,
            "seconds": pl.Int64,
            "short": pl.Boolean,
        },
    )
    raw = raw.with_columns(
        start=parse_local(pl.col("at")),
        stage=pl.col("level").replace_strict(STAGE_MAP, default=None, return_dtype=pl.String),
        n=(pl.col("seconds") + EPOCH_S - 1) // EPOCH_S,
    ).filter(pl.col("start").is_not_null() & pl.col("stage").is_not_null() & (pl.col("n") > 0))
    epochs = (
        raw.with_columns(i=pl.int_ranges(0, pl.col("n")))
        .explode("i")
        .select(
            "log_id",
            "short",
            "stage",
            t=pl.col("start") + pl.duration(seconds=pl.col("i") * EPOCH_S),
        )
    )
    base = epochs.filter(~pl.col("short")).unique(["log_id", "t"], keep="first")
    short = epochs.filter(pl.col("short")).select("log_id", "t", short_stage=pl.lit("awake"))
    short = short.unique(["log_id", "t"])
    ep = (
        base.join(short, on=["log_id", "t"], how="left")
        .with_columns(stage=pl.coalesce("short_stage", "stage"))
        .sort(["log_id", "t"])
    )
    new_run = (
        (pl.col("log_id") != pl.col("log_id").shift())
        | (pl.col("stage") != pl.col("stage").shift())
        | (pl.col("t") - pl.col("t").shift() != pl.duration(seconds=EPOCH_S))
    ).fill_null(True)
    return (
        ep.with_columns(run=new_run.cum_sum())
        .group_by("run", maintain_order=True)
        .agg(
            pl.col("log_id").first(),
            pl.col("stage").first(),
            start_local=pl.col("t").min(),
            end_local=pl.col("t").max() + pl.duration(seconds=EPOCH_S),
        )
        .select(list(schema))
    )


def _awakenings(stages: pl.DataFrame) -> pl.DataFrame:
    """Awakenings per log by ``lake.sleep_rules`` (local clock: only differences matter)."""
    local = stages.rename({"start_local": "start_utc", "end_local": "end_utc"})
    return summarise_stages(local, by="log_id", offset=None).select("log_id", "awakenings")


# ---------------------------------------------------------------- other types


def _heart_rate(ctx: FileContext) -> pl.DataFrame:
    df = _read_frame(ctx, ("dateTime", "value"))
    if df.is_empty():
        return df
    df = df.select(
        start_utc=parse_local(pl.col("dateTime")),
        bpm=pl.col("value").struct.field("bpm").cast(pl.Float64),
    )
    require_times(ctx, df, "start_utc")
    # heart_rate is the one Fitbit export type written in UTC.
    df = df.with_columns(pl.col("start_utc").dt.replace_time_zone("UTC"), context=pl.lit("sample"))
    return ctx.conform(df, "heart_rate", source=SOURCE)


def _steps(ctx: FileContext) -> pl.DataFrame:
    df = _read_frame(ctx, ("dateTime", "value"))
    if df.is_empty():
        return df
    df = df.select(
        t=parse_local(pl.col("dateTime")),
        steps=pl.col("value").cast(pl.String).cast(pl.Float64, strict=False),
    )
    require_times(ctx, df, "t")
    df = df.filter(pl.col("steps").is_not_null()).select(
        start_utc=local_to_utc(pl.col("t"), ctx.user),
        end_utc=local_to_utc(pl.col("t") + pl.duration(minutes=1), ctx.user),
        steps=pl.col("steps"),
    )
    return ctx.conform(df, "steps", source=SOURCE)


def _resting_hr(ctx: FileContext, entries: list[dict]) -> pl.DataFrame:
    days: list[str | None] = []
    values: list[float | None] = []
    for e in entries:
        v = e.get("value") or {}
        if not isinstance(v, dict):
            continue
        days.append(v.get("date"))
        values.append(v.get("value"))
    df = pl.DataFrame(
        {"day": days, "value": values}, schema={"day": pl.String, "value": pl.Float64}
    )
    # Fitbit writes value 0 with date null for days without a resting HR.
    df = df.filter(pl.col("day").is_not_null() & (pl.col("value") > 0))
    df = df.with_columns(d=parse_local(pl.col("day")))
    require_times(ctx, df, "d")
    df = df.select(
        start_utc=local_to_utc(pl.col("d"), ctx.user),
        end_utc=local_to_utc(pl.col("d") + pl.duration(days=1), ctx.user),
        metric=pl.lit("resting_hr"),
        value=pl.col("value"),
        unit=pl.lit("bpm"),
    )
    return ctx.conform(df, "vitals", source=SOURCE)


def _exercise(ctx: FileContext, entries: list[dict]) -> pl.DataFrame:
    cols = _pluck(entries, _EXERCISE_FIELDS)
    df = pl.DataFrame(
        cols,
        schema={
            "start": pl.String,
            "duration_ms": pl.Float64,
            "activity": pl.String,
            "avg_hr": pl.Float64,
            "kcal": pl.Float64,
            "distance": pl.Float64,
            "unit": pl.String,
        },
    )
    df = df.with_columns(t=parse_local(pl.col("start")))
    require_times(ctx, df, "t")
    factor = (
        pl.col("unit")
        .str.to_lowercase()
        .replace_strict(DISTANCE_M, default=None, return_dtype=pl.Float64)
    )
    df = df.with_columns(start_utc=local_to_utc(pl.col("t"), ctx.user)).select(
        "start_utc",
        end_utc=pl.col("start_utc") + pl.duration(milliseconds=pl.col("duration_ms").fill_null(0)),
        activity=pl.col("activity").str.to_lowercase(),
        duration_min=pl.col("duration_ms") / 60_000,
        avg_hr=pl.col("avg_hr"),
        energy_kcal=pl.col("kcal"),
        distance_m=pl.col("distance") * factor,
    )
    return ctx.conform(df, "workout", source=SOURCE)


def _sleep_score(ctx: FileContext) -> pl.DataFrame:
    try:
        df = pl.read_csv(ctx.path, infer_schema=False)
    except Exception as exc:
        raise ReadError(f"{ctx.display}: unreadable CSV ({exc})") from exc
    scores = [c for c in SCORE_COLUMNS if c in df.columns]
    if "timestamp" not in df.columns or not scores:
        raise ReadError(f"{ctx.display}: no timestamp or score columns")
    # The trailing "Z" is wrong: the value equals the sleep log's local endTime.
    df = df.with_columns(t=parse_local(pl.col("timestamp")))
    require_times(ctx, df, "t")
    long = df.unpivot(index="t", on=scores, variable_name="name", value_name="value")
    long = long.with_columns(pl.col("value").cast(pl.Float64, strict=False)).filter(
        pl.col("value").is_not_null()
    )
    out = long.select(
        start_utc=local_to_utc(pl.col("t"), ctx.user),
        date=pl.col("t").dt.date(),
        vendor=pl.lit("fitbit"),
        name=pl.col("name"),
        value=pl.col("value"),
    )
    return ctx.conform(out, "vendor_score", source=SOURCE).unique(
        "record_id", keep="first", maintain_order=True
    )


__all__ = ["PRIORITY", "SOURCE", "kind", "read", "sniff"]
