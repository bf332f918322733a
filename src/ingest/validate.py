"""Great Expectations suites per silver table: types, physiological ranges, time order, no future.

The suites are declared once here as data (``SPECS``) and run by Great Expectations on each run's
staged rows (one validation per table per run, not per file: GX costs ~0.07 s a run, which per file
would dominate a nightly run of hundreds of small FIT files). GX reports the index of every failed
row, so rows that break an expectation are dropped, written to ``quarantine/rows/`` with the name
of the expectation they failed, counted and reported; a file most of whose rows fail is
quarantined whole. Ranges come from DESIGN.md (HR 25–230 bpm, RR 300–2000 ms, SpO2 70–100).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import polars as pl

from tunewell.lake.schemas import table as table_def

# Accept up to a day in the future: device clocks drift and zones confuse exporters.
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
# Rows per GX run: each run gets its own pandas frame, so this bounds validation's memory
# (~25 MB of pandas columns at 200k rows, only the columns the suite reads) while keeping GX's
# fixed cost per run (~0.05 s) small against the rows it checks.
CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class Spec:
    """One expectation, declared once; ``kind`` maps to a GX expectation class."""

    name: str
    kind: str  # not_null | between | in_set | a_ge_b | max_duration | any_of
    column: str
    args: dict[str, Any] = field(default_factory=dict)


# FHIR R4 ObservationStatus (the same codes in DSTU2).
LAB_STATUS = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)

VITAL_RANGES = {
    "resting_hr": (25, 150),
    "respiration_rate": (4, 60),
    "spo2": (70, 100),
    "temperature_deviation": (-5, 5),
    "skin_temp": (20, 45),
    "stress": (0, 100),
    "weight": (20, 400),
}


def _common() -> list[Spec]:
    return [
        Spec("start_utc not null", "not_null", "start_utc"),
        Spec(
            "start_utc after 1990 and not in the future",
            "between",
            "start_utc",
            {"min_value": EARLIEST, "max_value": "now"},
        ),
        Spec("start before end", "a_ge_b", "end_utc", {"column_B": "start_utc"}),
        Spec(
            "utc offset within ±14 h",
            "between",
            "utc_offset_min",
            {"min_value": -14 * 60, "max_value": 14 * 60},
        ),
        Spec(
            "tz_source known",
            "in_set",
            "tz_source",
            {"value_set": ["record", "device", "user_setting", "assumed"]},
        ),
    ]


SPECS: dict[str, list[Spec]] = {
    "heart_rate": [
        Spec("bpm in 25..230", "between", "bpm", {"min_value": 25, "max_value": 230}),
        Spec("bpm not null", "not_null", "bpm"),
    ],
    "rr_interval": [
        Spec("rr_ms in 300..2000", "between", "rr_ms", {"min_value": 300, "max_value": 2000})
    ],
    "hrv": [
        Spec("value_ms in 1..500", "between", "value_ms", {"min_value": 1, "max_value": 500}),
        Spec("metric is rmssd or sdnn", "in_set", "metric", {"value_set": ["rmssd", "sdnn"]}),
        Spec(
            "window known",
            "in_set",
            "window",
            {"value_set": ["5min", "nightly", "spot", "last_sws", "first_4h"]},
        ),
    ],
    "sleep_episode": [
        Spec("end given", "not_null", "end_utc"),
        Spec("episode at most 24 h", "max_duration", "end_utc", {"hours": 24}),
        Spec("efficiency 0..100", "between", "efficiency_pct", {"min_value": 0, "max_value": 100}),
        Spec("tst 0..1440 min", "between", "tst_min", {"min_value": 0, "max_value": 1440}),
    ],
    "sleep_stage": [
        Spec(
            "known stage",
            "in_set",
            "stage",
            {"value_set": ["awake", "light", "deep", "rem", "asleep", "in_bed"]},
        ),
        Spec("end given", "not_null", "end_utc"),
    ],
    "steps": [Spec("steps 0..100000", "between", "steps", {"min_value": 0, "max_value": 100_000})],
    "workout": [
        Spec("avg_hr in 25..230", "between", "avg_hr", {"min_value": 25, "max_value": 230}),
        Spec("rpe 0..10", "between", "rpe", {"min_value": 0, "max_value": 10}),
    ],
    "vitals": [
        Spec(
            f"{m} in {lo}..{hi}",
            "between",
            "value",
            {"min_value": lo, "max_value": hi, "row_condition": f'metric=="{m}"'},
        )
        for m, (lo, hi) in VITAL_RANGES.items()
    ],
    "lab_result": [
        Spec("code or name given", "any_of", "code", {"columns": ["code", "name"]}),
        Spec("value or value_text given", "any_of", "value", {"columns": ["value", "value_text"]}),
        Spec(
            "status is an Observation status",
            "in_set",
            "status",
            {"value_set": sorted(LAB_STATUS)},
        ),
        Spec(
            "reference_high >= reference_low",
            "a_ge_b",
            "reference_high",
            {"column_B": "reference_low"},
        ),
        Spec(
            "collected_utc after 1990 and not in the future",
            "between",
            "collected_utc",
            {"min_value": EARLIEST, "max_value": "now"},
        ),
    ],
}


def specs(table: str) -> list[Spec]:
    return _common() + SPECS.get(table, [])


def _now() -> datetime:
    return datetime.now(UTC) + FUTURE_SLACK


def _gx_expectation(s: Spec):
    import great_expectations.expectations as gxe

    a = dict(s.args)
    cond = a.pop("row_condition", None)
    extra = {"row_condition": cond, "condition_parser": "pandas"} if cond else {}
    if s.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=s.column, **extra)
    if s.kind == "between":
        if a.get("max_value") == "now":
            a["max_value"] = _now()
        return gxe.ExpectColumnValuesToBeBetween(column=s.column, **a, **extra)
    if s.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=s.column, **a, **extra)
    if s.kind == "a_ge_b":
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=s.column,
            column_B=a["column_B"],
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    if s.kind == "any_of":
        # GX has no "one of these columns" expectation: validate the derived flag column.
        return gxe.ExpectColumnValuesToBeInSet(column=_any_col(s), value_set=[True])
    if s.kind == "max_duration":
        # GX has no duration expectation: validate the derived column it is given.
        return gxe.ExpectColumnValuesToBeBetween(
            column="__duration_h", min_value=0, max_value=a["hours"]
        )
    raise ValueError(f"unknown expectation kind {s.kind!r}")


@cache
def _gx_validation(table: str):
    """Build the table's suite once per process (GX import and set-up cost ~4 s in total)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    ctx = _gx_context()
    asset = ctx.data_sources.add_pandas(f"silver_{table}").add_dataframe_asset(table)
    batch = asset.add_batch_definition_whole_dataframe(f"{table}_batch")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"silver.{table}"))
    for s in specs(table):
        exp = _gx_expectation(s)
        exp.meta = {"tunewell_name": s.name}
        suite.add_expectation(exp)
    return ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate_{table}", data=batch, suite=suite)
    )


@cache
def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX announces its (empty, removed on exit) temporary docs folder at INFO on every run.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


@dataclass
class Outcome:
    good: pl.DataFrame
    bad: pl.DataFrame  # the failing rows with a ``failed`` column (first failed expectation)
    failures: dict[str, int]  # expectation name -> failing rows


def _any_col(s: Spec) -> str:
    return "__any_" + "_".join(s.args["columns"])


@cache
def _columns(table: str) -> tuple[str, ...]:
    """The columns the table's suite reads: only these become pandas (record ids, file hashes
    and device strings would otherwise be most of the frame's memory and conversion time)."""
    cols = ["start_utc"]
    for s in specs(table):
        if s.kind == "any_of":
            cols += s.args["columns"]
            continue
        cols.append(s.column)
        if "column_B" in s.args:
            cols.append(s.args["column_B"])
        if cond := s.args.get("row_condition"):
            cols += re.findall(r"(\w+)\s*==", cond)
    return tuple(dict.fromkeys(cols))


def _to_pandas(df: pl.DataFrame, table: str = ""):
    derived = {
        _any_col(s): pl.any_horizontal(pl.col(c).is_not_null() for c in s.args["columns"])
        for s in SPECS.get(table, [])
        if s.kind == "any_of"
    }
    df = df.select(c for c in _columns(table) if c in df.columns)
    pdf = df.with_columns(**derived).to_pandas() if derived else df.to_pandas()
    if "end_utc" in df.columns:
        pdf["__duration_h"] = (pdf["end_utc"] - pdf["start_utc"]).dt.total_seconds() / 3600.0
    return pdf


def check(table: str, df: pl.DataFrame) -> Outcome:
    """Run the table's GX suite; split rows into kept and failed."""
    if df.is_empty():
        return Outcome(df, df.with_columns(pl.lit(None, pl.String).alias("failed")), {})
    table_def(table)  # unknown tables are an error here, not a silent pass
    validation = _gx_validation(table)
    failed_at: dict[int, str] = {}
    failures: dict[str, int] = {}
    for offset in range(0, df.height, CHUNK_ROWS):
        chunk = df.slice(offset, CHUNK_ROWS)
        res = validation.run(
            batch_parameters={"dataframe": _to_pandas(chunk, table)},
            result_format={"result_format": "COMPLETE"},
        )
        for r in res.results:
            if r.success:
                continue
            name = (r.expectation_config.meta or {}).get("tunewell_name", r.expectation_config.type)
            idx = r.result.get("unexpected_index_list") or []
            if not idx and r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"expectation {name!r} could not run: "
                    f"{r.exception_info.get('exception_message')}"
                )
            failures[name] = failures.get(name, 0) + len(idx)
            for i in idx:
                failed_at.setdefault(offset + int(i), name)
    if not failed_at:
        return Outcome(df, df.head(0).with_columns(pl.lit(None, pl.String).alias("failed")), {})
    marks = pl.DataFrame(
        {"__row": list(failed_at), "failed": list(failed_at.values())},
        schema={"__row": pl.UInt32, "failed": pl.String},
    )
    tagged = df.with_row_index("__row").join(marks, on="__row", how="left")
    good = tagged.filter(pl.col("failed").is_null()).drop("__row", "failed")
    bad = tagged.filter(pl.col("failed").is_not_null()).drop("__row")
    return Outcome(good, bad, failures)
