"""The lake contract: every table's columns, types, keys and meaning.

Analysts and the rest of the pipeline depend on these names; renaming a column is a breaking change.
Each column carries its data-dictionary entry (meaning, unit, definition source), which is embedded
as Parquet field metadata and rendered to ``DICTIONARY.md`` so the lake documents itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Col:
    name: str
    type: pa.DataType
    meaning: str
    unit: str = ""
    source: str = ""
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    layer: str  # "silver" | "gold"
    description: str
    columns: tuple[Col, ...]
    # Columns whose values identify a record independently of which file brought it, so the same
    # record from two overlapping exports gets the same record_id.
    key: tuple[str, ...]
    # Column used for the year partition.
    time_column: str = "start_utc"
    extra: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        fields = [
            pa.field(
                c.name,
                c.type,
                nullable=c.nullable,
                metadata={"meaning": c.meaning, "unit": c.unit, "source": c.source},
            )
            for c in self.columns
        ]
        return pa.schema(
            fields, metadata={"tunewell.table": self.name, "tunewell.layer": self.layer}
        )


TZ_SOURCES = ("record", "device", "user_setting", "assumed")

COMMON: tuple[Col, ...] = (
    Col(
        "user_id",
        pa.string(),
        "Person the row belongs to (pseudonymised when configured)",
        source="DESIGN.md",
        nullable=False,
    ),
    Col(
        "source",
        pa.string(),
        "Vendor/format the row was read from, e.g. garmin_fit, apple_health",
        nullable=False,
    ),
    Col("device", pa.string(), "Normalised device name/model that recorded the value"),
    Col("source_file", pa.string(), "SHA-256 of the file the row came from", nullable=False),
    Col(
        "record_id",
        pa.string(),
        "Deterministic id of the record (hash of user, table, source, device and natural key); "
        "upserts replace rows with the same id",
        nullable=False,
    ),
    Col(
        "start_utc",
        TS,
        "Start of the measurement (or instant of a point sample), UTC",
        source="IEEE 1752.1 effective_time_frame",
        nullable=False,
    ),
    Col(
        "end_utc",
        TS,
        "End of the measurement interval, UTC (null for point samples)",
        source="IEEE 1752.1 effective_time_frame",
    ),
    Col(
        "utc_offset_min",
        pa.int32(),
        "Local offset from UTC at start_utc, minutes",
        "min",
        nullable=False,
    ),
    Col("tz_name", pa.string(), "IANA time zone name where known"),
    Col(
        "tz_source",
        pa.string(),
        "Where the offset came from: record | device | user_setting | assumed",
        nullable=False,
    ),
)
COMMON_NAMES = tuple(c.name for c in COMMON)

_T = Table  # shorthand below


def _silver(name: str, description: str, cols: tuple[Col, ...], key: tuple[str, ...]) -> Table:
    return Table(name, "silver", description, COMMON + cols, key)


NIGHT_RULE_COL = Col(
    "night_rule",
    pa.string(),
    "Name and version of the rule that assigned sleep_date and main sleep",
    source="METRICS.md night assignment",
)

SILVER: dict[str, Table] = {
    t.name: t
    for t in (
        _silver(
            "heart_rate",
            "Heart-rate samples (instantaneous or interval averages)",
            (
                Col("bpm", pa.float64(), "Heart rate", "bpm", "Task Force 1996"),
                Col(
                    "context",
                    pa.string(),
                    "What the sample is: sample | sleep | workout | daily_avg | daily_min | "
                    "daily_max",
                ),
            ),
            ("start_utc", "end_utc", "context"),
        ),
        _silver(
            "rr_interval",
            "Beat-to-beat (RR / inter-beat) intervals; start_utc is the time of the beat",
            (
                Col(
                    "rr_ms",
                    pa.float64(),
                    "Interval between successive beats",
                    "ms",
                    "Task Force 1996",
                ),
            ),
            ("start_utc",),
        ),
        _silver(
            "hrv",
            "Heart-rate variability values as the device computed them, labelled by metric and "
            "window; values of different metric or window are never mixed",
            (
                Col("metric", pa.string(), "rmssd | sdnn", source="METRICS.md HRV", nullable=False),
                Col(
                    "window",
                    pa.string(),
                    "5min | nightly | spot | last_sws | first_4h",
                    source="METRICS.md HRV",
                    nullable=False,
                ),
                Col("value_ms", pa.float64(), "HRV value", "ms", "Task Force 1996", nullable=False),
            ),
            ("start_utc", "metric", "window"),
        ),
        _silver(
            "sleep_episode",
            "One sleep period (main sleep or nap) with the vendor's or stage-derived summary",
            (
                Col(
                    "sleep_date",
                    pa.date32(),
                    "Local date of the wake-up that ends the episode",
                    source="METRICS.md night assignment",
                    nullable=False,
                ),
                Col(
                    "is_main_sleep",
                    pa.bool_(),
                    "Longest episode starting between 12:00 the day before and 12:00 of sleep_date",
                    source="METRICS.md night assignment",
                ),
                Col("tib_min", pa.float64(), "Time in bed", "min", "METRICS.md TIB"),
                Col(
                    "tst_min",
                    pa.float64(),
                    "Total sleep time",
                    "min",
                    "IEEE 1752.1 total_sleep_time",
                ),
                Col(
                    "sol_min",
                    pa.float64(),
                    "Sleep onset latency",
                    "min",
                    "IEEE 1752.1 latency_to_sleep_onset",
                ),
                Col(
                    "waso_min",
                    pa.float64(),
                    "Wake after sleep onset",
                    "min",
                    "IEEE 1752.1 wake_after_sleep_onset",
                ),
                Col(
                    "awakenings",
                    pa.int32(),
                    "Wake bouts longer than 5 min after onset",
                    "count",
                    "Ohayon et al. 2017",
                ),
                Col("efficiency_pct", pa.float64(), "TST / TIB × 100", "%", "METRICS.md SE"),
                Col("vendor_episode_id", pa.string(), "The vendor's id of the sleep log"),
                NIGHT_RULE_COL,
            ),
            ("start_utc",),
        ),
        _silver(
            "sleep_stage",
            "Sleep stage intervals; stage in {awake, light, deep, rem, asleep, in_bed}",
            (
                Col(
                    "stage",
                    pa.string(),
                    "awake | light | deep | rem | asleep | in_bed",
                    source="IEEE 1752.1 sleep stage",
                    nullable=False,
                ),
                Col("episode_id", pa.string(), "record_id of the sleep_episode it belongs to"),
            ),
            ("start_utc", "end_utc", "stage"),
        ),
        _silver(
            "steps",
            "Step counts over an interval (minute, hour, day …)",
            (
                Col(
                    "steps",
                    pa.float64(),
                    "Steps in the interval",
                    "count",
                    "IEEE 1752.1 step_count",
                    nullable=False,
                ),
            ),
            ("start_utc", "end_utc"),
        ),
        _silver(
            "workout",
            "Exercise sessions",
            (
                Col("activity", pa.string(), "Activity type, lower case (running, cycling …)"),
                Col("duration_min", pa.float64(), "Moving/elapsed duration", "min"),
                Col("avg_hr", pa.float64(), "Average heart rate", "bpm"),
                Col("max_hr", pa.float64(), "Maximum heart rate", "bpm"),
                Col("energy_kcal", pa.float64(), "Energy burned", "kcal"),
                Col("distance_m", pa.float64(), "Distance", "m"),
                Col(
                    "rpe",
                    pa.float64(),
                    "Rating of perceived exertion, CR-10",
                    "0-10",
                    "Foster et al. 2001",
                ),
                Col(
                    "vendor_load",
                    pa.float64(),
                    "Vendor's own load number (WHOOP strain, Garmin training load …)",
                ),
            ),
            ("start_utc",),
        ),
        _silver(
            "vitals",
            "Other physiological values: resting_hr, respiration_rate, spo2, "
            "temperature_deviation, skin_temp, stress",
            (
                Col(
                    "metric",
                    pa.string(),
                    "resting_hr | respiration_rate | spo2 | temperature_deviation | skin_temp | "
                    "stress | weight",
                    nullable=False,
                ),
                Col("value", pa.float64(), "Value in unit", nullable=False),
                Col("unit", pa.string(), "bpm | rpm | % | degC | score | kg"),
            ),
            ("start_utc", "metric"),
        ),
        _silver(
            "vendor_score",
            "Vendors' own scores (sleep score, readiness, recovery …), kept for comparison only",
            (
                Col(
                    "date",
                    pa.date32(),
                    "Local date the vendor assigned the score to",
                    nullable=False,
                ),
                Col(
                    "vendor",
                    pa.string(),
                    "garmin | oura | whoop | fitbit | apple …",
                    nullable=False,
                ),
                Col("name", pa.string(), "Score name as the vendor calls it", nullable=False),
                Col("value", pa.float64(), "Score value on the vendor's scale"),
            ),
            ("date", "vendor", "name"),
        ),
        _silver(
            "self_report",
            "Questionnaire answers and journal entries",
            (
                Col("date", pa.date32(), "Local date the answer refers to", nullable=False),
                Col(
                    "item",
                    pa.string(),
                    "Question/item, e.g. sleep_quality, fatigue, stress",
                    nullable=False,
                ),
                Col("value", pa.float64(), "Numeric answer on the item's scale"),
                Col("text", pa.string(), "Free-text answer or note"),
            ),
            ("start_utc", "item"),
        ),
    )
}


def _gold(
    name: str, description: str, cols: tuple[Col, ...], key: tuple[str, ...], time_column: str
) -> Table:
    base = (
        Col("user_id", pa.string(), "Person the row belongs to", nullable=False),
        Col(
            "record_id",
            pa.string(),
            "Deterministic id: user and the row's date key",
            nullable=False,
        ),
    )
    return Table(name, "gold", description, base + cols, key, time_column=time_column)


GOLD: dict[str, Table] = {
    t.name: t
    for t in (
        _gold(
            "nightly_features",
            "One row per user and sleep date: sleep, HRV, heart rate and baselines",
            (
                Col(
                    "sleep_date",
                    pa.date32(),
                    "Local wake-up date of the main sleep",
                    source="METRICS.md night assignment",
                    nullable=False,
                ),
                Col(
                    "tst_min",
                    pa.float64(),
                    "Total sleep time of the main sleep",
                    "min",
                    "IEEE 1752.1",
                ),
                Col(
                    "efficiency_pct",
                    pa.float64(),
                    "Sleep efficiency of the main sleep",
                    "%",
                    "METRICS.md SE",
                ),
                Col(
                    "rmssd_ms",
                    pa.float64(),
                    "Nightly RMSSD over the main sleep",
                    "ms",
                    "METRICS.md nightly RMSSD",
                ),
            ),
            ("sleep_date",),
            "sleep_date",
        ),
        _gold(
            "daily_load",
            "One row per user and local date: training load and its ratios",
            (
                Col("date", pa.date32(), "Local date", nullable=False),
                Col(
                    "trimp",
                    pa.float64(),
                    "Banister TRIMP from workout HR",
                    "AU",
                    "Morton, Fitz-Clarke & Banister 1990",
                ),
                Col("srpe_load", pa.float64(), "Session-RPE load", "AU", "Foster et al. 2001"),
            ),
            ("date",),
            "date",
        ),
        _gold(
            "scores",
            "One row per user and sleep date: autonomic balance and sleep-quality estimates",
            (
                Col("sleep_date", pa.date32(), "Local wake-up date", nullable=False),
                Col(
                    "balance_index",
                    pa.float64(),
                    "Arousal/inhibition balance: 0 usual, < 0 arousal-leaning, > 0 "
                    "inhibition-leaning (weighted personal z-scores)",
                    "z",
                    "METRICS.md autonomic balance",
                ),
                Col("balance_state", pa.string(), "calibrating | arousal | balanced | inhibition"),
                Col("sleep_quality", pa.float64(), "Estimated sleep quality", "0-100"),
                Col("contributors", pa.string(), "JSON: each input's contribution"),
                Col("model_version", pa.string(), "Version of the model that scored the row"),
            ),
            ("sleep_date",),
            "sleep_date",
        ),
        _gold(
            "weekly_summary",
            "One row per user and ISO week: summary and lifestyle suggestions for the coach",
            (
                Col("week", pa.string(), "ISO week, e.g. 2026-W47", nullable=False),
                Col("week_start", pa.date32(), "Monday of the ISO week", nullable=False),
                Col("summary_md", pa.string(), "Markdown summary"),
                Col("suggestions", pa.string(), "JSON list of suggestions with their evidence"),
            ),
            ("week",),
            "week_start",
        ),
    )
}

TABLES: dict[str, Table] = {**SILVER, **GOLD}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}") from None


def dictionary_markdown() -> str:
    """Render the data dictionary that the lake carries as ``DICTIONARY.md``."""
    lines = [
        "# tunewell lake: data dictionary",
        "",
        "Generated from `tunewell.lake.schemas`; the same entries are embedded in each Parquet "
        "file's field metadata. Silver tables live in `silver/<table>/user_id=…/year=…/`, gold "
        "tables in `gold/<table>/user_id=…/year=…/`. Times are UTC; `utc_offset_min` gives local "
        "time. Durations are computed in UTC, dates and clock times in local time.",
        "",
    ]
    for t in TABLES.values():
        lines += [
            f"## {t.layer}.{t.name}",
            "",
            t.description,
            "",
            f"Natural key (besides user): `{', '.join(t.key)}`",
            "",
            "| column | type | unit | meaning | definition source |",
            "|---|---|---|---|---|",
        ]
        for c in t.columns:
            lines.append(
                f"| `{c.name}` | {c.type} | {c.unit} | {c.meaning.replace('|', '/')} | {c.source} |"
            )
        lines.append("")
    return "\n".join(lines)
