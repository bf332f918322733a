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


def _silver(
    name: str,
    description: str,
    cols: tuple[Col, ...],
    key: tuple[str, ...],
    time_column: str = "start_utc",
) -> Table:
    return Table(name, "silver", description, COMMON + cols, key, time_column=time_column)


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
            # keyed by date, so partitioned by it: the same score re-exported with another
            # timestamp around New Year must not land in two year partitions
            time_column="date",
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
        _silver(
            "lab_result",
            "Biochemical markers (lab panels, home test kits, saliva samples) stored as the lab "
            "reported them; context only, never an input of any score. start_utc is the "
            "clinically relevant time (FHIR effective[x]; end_utc closes an effectivePeriod)",
            (
                Col(
                    "code",
                    pa.string(),
                    "The result's code as given (a LOINC code where the lab used LOINC)",
                    source="FHIR R4 Observation.code",
                ),
                Col(
                    "code_system",
                    pa.string(),
                    "System of code, e.g. http://loinc.org (null when the lab gave none)",
                    source="FHIR R4 Coding.system",
                ),
                Col(
                    "name",
                    pa.string(),
                    "The lab's own name of the marker (code display or text)",
                    source="FHIR R4 Observation.code.text",
                ),
                Col(
                    "value",
                    pa.float64(),
                    "Numeric result in unit (null for text results and for '<'/'>' results, "
                    "which are kept in value_text)",
                    source="FHIR R4 Observation.valueQuantity",
                ),
                Col(
                    "unit",
                    pa.string(),
                    "Unit of value and of the reference range: the UCUM code where the lab gave "
                    "one, else its unit text",
                    source="UCUM; FHIR R4 Quantity.code",
                ),
                Col(
                    "value_text",
                    pa.string(),
                    "Non-numeric result as written (valueString, valueCodeableConcept, "
                    "'<0.5', a data-absent reason)",
                    source="FHIR R4 Observation.value[x]",
                ),
                Col(
                    "reference_low",
                    pa.float64(),
                    "Lower bound of the lab's reference range, in unit",
                    source="FHIR R4 Observation.referenceRange.low",
                ),
                Col(
                    "reference_high",
                    pa.float64(),
                    "Upper bound of the lab's reference range, in unit",
                    source="FHIR R4 Observation.referenceRange.high",
                ),
                Col(
                    "reference_text",
                    pa.string(),
                    "The lab's wording of the reference range (e.g. '<200 mg/dL', 'negative')",
                    source="FHIR R4 Observation.referenceRange.text",
                ),
                Col(
                    "interpretation",
                    pa.string(),
                    "The lab's own flag as written (H, L, N, A …, or its text)",
                    source="FHIR R4 Observation.interpretation",
                ),
                Col(
                    "specimen",
                    pa.string(),
                    "Specimen as the lab named it, lower case (serum, blood, saliva, urine …)",
                    source="FHIR R4 Specimen.type",
                ),
                Col(
                    "collected_utc",
                    TS,
                    "When the specimen was collected, UTC (Specimen.collection, else "
                    "effective[x]; null when the source gives no time)",
                    source="FHIR R4 Specimen.collection.collected[x]",
                ),
                Col(
                    "status",
                    pa.string(),
                    "registered | preliminary | final | amended | corrected | cancelled | "
                    "entered-in-error | unknown",
                    source="FHIR R4 ObservationStatus",
                ),
                Col(
                    "source_document",
                    pa.string(),
                    "Document and resource the row came from, e.g. "
                    "'clinical-records/lab.json#Observation/123'",
                ),
            ),
            ("start_utc", "code_system", "code", "name", "specimen"),
        ),
    )
}


# Silver tables that no gold table reads (lab markers are context only): new rows in them owe
# the gold refresh nothing.
CONTEXT_ONLY: frozenset[str] = frozenset({"lab_result"})


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


_F, _I, _B, _S = pa.float64(), pa.int32(), pa.bool_(), pa.string()
_BASELINE_SERIES = {
    "ln_rmssd": ("ln(ms)", "nightly lnRMSSD (same rmssd_window only)"),
    "resting_hr": ("bpm", "resting HR"),
    "hr_sleep_mean": ("bpm", "mean sleeping HR"),
    "tst_min": ("min", "total sleep time"),
    "midpoint_h": ("h", "sleep midpoint clock time"),
    "resp_rate": ("breaths/min", "sleeping respiratory rate"),
    "skin_temp_dev": ("°C", "skin temperature deviation"),
    "hr_dip_pct": ("%", "nocturnal HR dip"),
}


# The baseline columns of each series, in this order (features.baselines computes them).
BASELINE_SUFFIXES = (
    "b7",
    "n7",
    "mu60",
    "sd60",
    "n60",
    "swc",
    "z",
    "med60",
    "mad60",
    "zr",
    "cv7",
    "calibrating",
)


def _baseline_cols() -> tuple[Col, ...]:
    src = "METRICS.md Personal baselines"
    cols: list[Col] = []
    for s, (unit, what) in _BASELINE_SERIES.items():
        first = len(cols)
        cols += [
            Col(
                f"{s}_b7",
                _F,
                f"Acute 7-day mean of {what} (null with < 4 valid days)",
                unit,
                "Plews et al. 2014",
            ),
            Col(f"{s}_n7", _I, f"Valid days of {what} in the acute 7-day window", "days", src),
            Col(
                f"{s}_mu60",
                _F,
                f"Chronic mean of {what} over the 60 days before the acute "
                "week (null with < 14 valid days)",
                unit,
                src,
            ),
            Col(f"{s}_sd60", _F, f"Chronic sample SD of {what} over the same 60 days", unit, src),
            Col(f"{s}_n60", _I, f"Valid days of {what} in the chronic window", "days", src),
            Col(
                f"{s}_swc",
                _F,
                f"Smallest worthwhile change of {what} = 0.5 × sd60",
                unit,
                "Hopkins 2004; Buchheit 2014",
            ),
            Col(f"{s}_z", _F, f"(value − mu60) / sd60 of {what}", "z", src),
            Col(f"{s}_med60", _F, f"Chronic median of {what} over the same 60 days", unit, src),
            Col(
                f"{s}_mad60",
                _F,
                f"Scaled MAD of {what} over the same 60 days: 1.4826 × median |x − med60|",
                unit,
                src,
            ),
            Col(
                f"{s}_zr",
                _F,
                f"Robust z of {what}: (value − med60) / mad60 (null when mad60 = 0)",
                "z",
                src,
            ),
            Col(
                f"{s}_cv7",
                _F,
                f"CV of {what} over the acute window: SD / |mean| × 100",
                "%",
                "Plews et al. 2012",
            ),
            Col(f"{s}_calibrating", _B, f"True while {what} has < 14 valid chronic days", "", src),
        ]
        names = [c.name for c in cols[first:]]
        if names != [f"{s}_{x}" for x in BASELINE_SUFFIXES]:
            raise AssertionError(f"baseline columns of {s} differ from BASELINE_SUFFIXES")
    return tuple(cols)


_VITALS_SRC = "tunewell.features.vitals"
_SRC_LABEL = (
    "source:metric of the silver vitals rows used (several joined by +, e.g. a night split at "
    "midnight between two devices); null when not measured"
)
_VITALS_COLS: tuple[Col, ...] = (
    Col(
        "resp_rate",
        _F,
        "Respiratory rate during the main sleep: mean of the vitals respiration_rate values "
        "stamped inside it (vendor nightly values or samples); daytime samples never count; "
        "without any, a date-level vendor summary (row spanning >= 12 h) of sleep_date",
        "breaths/min",
        "METRICS.md Arousal / inhibition balance",
    ),
    Col("resp_rate_source", _S, f"Respiratory rate {_SRC_LABEL}", source=_VITALS_SRC),
    Col(
        "resp_rate_ok",
        _B,
        "resp_rate is backed by a vendor nightly value (a row spanning >= 1 h) or >= 4 samples "
        "inside the main sleep, or by a date-level summary",
        source=_VITALS_SRC,
    ),
    Col(
        "skin_temp_dev",
        _F,
        "Skin/wrist temperature deviation of the night: the vendor's deviation "
        "(temperature_deviation: Oura, Garmin, Fitbit) where exported, else the absolute "
        "skin_temp (WHOOP, Apple, Fitbit) minus the median of the same source's values on the "
        "previous 28 nights (>= 7 of them; causal). A vitals row belongs to the night when "
        "stamped inside the main sleep, else to its local date",
        "°C",
        "METRICS.md Arousal / inhibition balance",
    ),
    Col("skin_temp_dev_source", _S, f"Skin temperature {_SRC_LABEL}", source=_VITALS_SRC),
    Col(
        "skin_temp_dev_ok",
        _B,
        "skin_temp_dev is computed (False also when only an absolute temperature exists and it "
        "has < 7 reference nights yet)",
        source=_VITALS_SRC,
    ),
    Col(
        "spo2_pct",
        _F,
        "Blood-oxygen saturation during the main sleep: mean of the vitals spo2 values inside "
        "it, else a date-level vendor summary of sleep_date (same rule as resp_rate)",
        "%",
        "DESIGN.md vitals",
    ),
    Col("spo2_source", _S, f"SpO2 {_SRC_LABEL}", source=_VITALS_SRC),
    Col(
        "spo2_ok", _B, "spo2_pct is backed by data (same rule as resp_rate_ok)", source=_VITALS_SRC
    ),
    Col(
        "hr_day_mean",
        _F,
        "Daytime HR: mean of 5-min bin means of per-sample HR (context sample) between local "
        "10:00 and 20:00 on the day before sleep_date, outside recorded workouts; null unless "
        "hr_day_ok",
        "bpm",
        "METRICS.md Arousal / inhibition balance (nocturnal HR dip)",
    ),
    Col(
        "hr_day_source", _S, "Source(s) of the daytime HR samples, joined by +", source=_VITALS_SRC
    ),
    Col(
        "hr_day_ok",
        _B,
        "Daytime HR covers >= 60 of the window's 120 five-minute bins (>= 5 of the 10 hours)",
        source=_VITALS_SRC,
    ),
    Col(
        "hr_dip_pct",
        _F,
        "Nocturnal HR dip: (hr_day_mean − hr_sleep_mean) / hr_day_mean × 100; null unless "
        "hr_dip_ok",
        "%",
        "METRICS.md Arousal / inhibition balance",
    ),
    Col("hr_dip_ok", _B, "Both hr_day_ok and hr_ok", source=_VITALS_SRC),
)


# The series with personal baselines (columns ``<series>_<suffix>`` for each suffix).
BASELINE_SERIES: tuple[str, ...] = tuple(_BASELINE_SERIES)


NIGHTLY_COLS: tuple[Col, ...] = (
    Col(
        "sleep_date",
        pa.date32(),
        "Local wake-up date of the main sleep",
        source="METRICS.md night assignment",
        nullable=False,
    ),
    NIGHT_RULE_COL,
    Col("sleep_ok", _B, "A main sleep episode exists for this date"),
    Col("episode_id", _S, "record_id of the main sleep_episode"),
    Col("sleep_source", _S, "Source of the main sleep episode"),
    Col(
        "sleep_from_stages",
        _B,
        "Sleep values computed from sleep_stage (False: vendor summary of a stage-less episode)",
    ),
    Col("episode_start_utc", TS, "Start of the main sleep episode (into bed), UTC"),
    Col("episode_end_utc", TS, "End of the main sleep episode (out of bed), UTC"),
    Col("tib_min", _F, "Time in bed of the main sleep", "min", "METRICS.md TIB"),
    Col(
        "tst_min",
        _F,
        "Total sleep time of the main sleep (UTC minutes scored asleep)",
        "min",
        "IEEE 1752.1 total_sleep_time",
    ),
    Col("sol_min", _F, "Sleep onset latency", "min", "IEEE 1752.1 latency_to_sleep_onset"),
    Col(
        "waso_min",
        _F,
        "Wake between sleep onset and final awakening",
        "min",
        "IEEE 1752.1 wake_after_sleep_onset",
    ),
    Col("awakenings", _I, "Wake bouts > 5 min after onset", "count", "Ohayon et al. 2017"),
    Col(
        "efficiency_pct",
        _F,
        "Sleep efficiency of the main sleep: TST / TIB × 100",
        "%",
        "METRICS.md SE",
    ),
    *(
        Col(
            f"{s}_min",
            _F,
            f"Minutes of {s} sleep (null when the episode is not staged)",
            "min",
            "IEEE 1752.1 sleep stage",
        )
        for s in ("deep", "light", "rem")
    ),
    *(
        Col(f"{s}_pct", _F, f"{s} minutes / TST × 100", "%", "IEEE 1752.1 sleep stage")
        for s in ("deep", "light", "rem")
    ),
    Col(
        "onset_h",
        _F,
        "Sleep onset, local clock hours after midnight of sleep_date − 1",
        "h",
        "METRICS.md midpoint",
    ),
    Col(
        "offset_h",
        _F,
        "Final awakening, local clock hours after midnight of sleep_date − 1",
        "h",
        "METRICS.md midpoint",
    ),
    Col(
        "midpoint_h",
        _F,
        "onset + (final awakening − onset)/2, local clock hours after "
        "midnight of sleep_date − 1 (offset in force at the midpoint)",
        "h",
        "Roenneberg, MCTQ",
    ),
    Col(
        "nap_count",
        _I,
        "Other episodes assigned to this sleep date",
        "count",
        "METRICS.md night assignment",
    ),
    Col("nap_min", _F, "Sleep minutes of those naps (TST, else TIB)", "min"),
    Col(
        "rmssd_ms",
        _F,
        "Nightly RMSSD over the main sleep: median of valid 5-min RMSSD from RR "
        "intervals, else the device value named by rmssd_window",
        "ms",
        "METRICS.md nightly RMSSD",
    ),
    Col("ln_rmssd", _F, "ln(rmssd_ms)", "ln(ms)", "Plews et al. 2012"),
    Col(
        "rmssd_window",
        _S,
        "Window of rmssd_ms: nightly | first_4h | last_sws | spot",
        source="METRICS.md HRV",
    ),
    Col("hrv_source", _S, "rr (computed from beats) | device (vendor value)"),
    Col(
        "sdnn_ms",
        _F,
        "SDNN: median of valid 5-min SDNN from RR, else device SDNN",
        "ms",
        "Task Force 1996",
    ),
    Col("sdnn_window", _S, "Window of sdnn_ms", source="METRICS.md HRV"),
    Col(
        "hrv_n_windows",
        _I,
        "Valid 5-min RR windows (>= 60 % covered by kept beats) in the "
        "main sleep; RR values are used from 6 windows on",
        "count",
        "METRICS.md nightly RMSSD",
    ),
    Col(
        "rr_kept_fraction",
        _F,
        "Share of RR beats in the main sleep kept by cleaning",
        "0-1",
        "METRICS.md RR cleaning",
    ),
    Col("hrv_ok", _B, "rmssd_ms is backed by enough data (>= 6 RR windows or a device value)"),
    Col("hr_sleep_mean", _F, "Mean HR during the main sleep", "bpm"),
    Col("hr_sleep_min", _F, "Lowest 5-min mean HR during the main sleep", "bpm"),
    Col("hr_ok", _B, "HR samples cover >= 50 % of the main sleep's 5-min bins"),
    Col(
        "resting_hr",
        _F,
        "Vendor resting HR for the date, else the lowest 30-min mean HR during the main sleep",
        "bpm",
    ),
    Col("resting_hr_source", _S, "vendor | sleep_lowest_30min"),
    *_VITALS_COLS,
    Col(
        "sri",
        _F,
        "Sleep Regularity Index over the last 7 day pairs (noon-to-noon frames, "
        "1-min epochs, over the epochs valid on both days); null with < 4 valid pairs",
        "-100..100",
        "Phillips et al. 2017; Windred et al. 2024",
    ),
    Col(
        "sri_n_pairs",
        _I,
        "Valid day pairs in the SRI window: >= 66 % of the 1440 epochs valid on both days, an "
        "epoch being valid when it lies in a recorded sleep or has steps or HR from the device",
        "count",
        "Phillips et al. 2017",
    ),
    Col("sri_ok", _B, "sri is computed (>= 4 valid pairs)"),
    Col(
        "bedtime_sd_min",
        _F,
        "Circular SD of onset clock time over the last 14 nights (>= 7)",
        "min",
        "METRICS.md bedtime / wake SD",
    ),
    Col(
        "waketime_sd_min",
        _F,
        "Circular SD of final-awakening clock time over 14 nights",
        "min",
        "METRICS.md bedtime / wake SD",
    ),
    Col("timing_n_nights", _I, "Nights with a main sleep in the last 14 days", "count"),
    Col(
        "social_jetlag_h",
        _F,
        "|mean midpoint of nights waking Sat/Sun − of nights waking "
        "Mon–Fri| over the last 28 days (>= 2 free, >= 3 work nights)",
        "h",
        "Wittmann et al. 2006",
    ),
    Col(
        "rar_is",
        _F,
        "Interdaily stability of hourly activity (steps, else mean HR: rar_signal) over the 7 "
        "local days before sleep_date",
        "0-1",
        "Witting et al. 1990",
    ),
    Col(
        "rar_iv",
        _F,
        "Intradaily variability of hourly activity, same signal and window",
        "0-2",
        "Van Someren et al. 1999",
    ),
    Col(
        "rar_l5",
        _F,
        "Mean activity of the least active 5 h of the mean day (steps/h; bpm if rar_signal = hr)",
        "steps/h | bpm",
        "Van Someren et al. 1997",
    ),
    Col(
        "rar_m10",
        _F,
        "Mean activity of the most active 10 h of the mean day (steps/h; bpm if rar_signal = hr)",
        "steps/h | bpm",
        "Van Someren et al. 1997",
    ),
    Col(
        "rar_ra", _F, "Relative amplitude (M10 − L5) / (M10 + L5)", "0-1", "Van Someren et al. 1997"
    ),
    Col("rar_n_days", _I, "Days with data of the signal used in the 7-day window", "days"),
    Col(
        "rar_ok",
        _B,
        "All 7 days had step data (or, lacking steps, HR in all 24 hours), so IS/IV/L5/M10/RA "
        "are computed",
    ),
    Col(
        "rar_signal",
        _S,
        "Signal of the rest-activity values: steps | hr (hourly mean HR when steps are missing)",
        source="METRICS.md rest-activity rhythm",
    ),
    *_baseline_cols(),
)

_BAL = "METRICS.md Arousal / inhibition balance"
_SQ = "METRICS.md Sleep-quality indicator"
SCORE_COLS: tuple[Col, ...] = (
    Col(
        "balance_index",
        _F,
        "Arousal/inhibition balance: weighted mean of the signed personal z-scores of the markers "
        "measured that night (each clipped to ±3) × 100/3; 0 = the person's usual, < 0 "
        "arousal-leaning, > 0 inhibition-leaning; null when no marker was measured",
        "-100..100",
        _BAL,
    ),
    Col(
        "balance_state",
        _S,
        "calibrating (lnRMSSD or resting-HR baseline has < 14 chronic days) | arousal-leaning "
        "(index < −100/3 × 0.5 ≈ −17, the SWC) | balanced | inhibition-leaning (> 17); null with "
        "no marker",
        source=_BAL,
    ),
    Col(
        "balance_confidence",
        _F,
        "Share of the markers' weight measured that night × min(1, n60 / 30), n60 = the smaller "
        "chronic-day count of the lnRMSSD and resting-HR baselines",
        "0-1",
        _BAL,
    ),
    Col("balance_markers", _S, "Comma-separated markers that entered the index that night"),
    Col(
        "contributors",
        _S,
        "JSON list of {marker, value, z, weight (renormalised over the markers present), share "
        "(signed share of the index: contribution / sum of |contributions|)}",
        source=_BAL,
    ),
    Col(
        "sleep_quality",
        _F,
        "Sleep-quality score: the expected next-morning self-report (1–5) mapped to 0–100, from a "
        "model fitted to PMData self-reports (see the model card); null without a main sleep",
        "0-100",
        _SQ,
    ),
    Col(
        "sleep_quality_basis",
        _S,
        "staged (the variant with sleep-stage features) | unstaged (no stages that night)",
        source=_SQ,
    ),
    Col(
        "flag_short_sleep",
        _B,
        "TST < 7 h or < own mu60 − SWC (null without TST)",
        source="Hirshkowitz et al. 2015; METRICS.md",
    ),
    Col("flag_low_efficiency", _B, "Sleep efficiency < 85 %", source="Ohayon et al. 2017"),
    Col("flag_long_latency", _B, "Sleep onset latency > 30 min", source="Ohayon et al. 2017"),
    Col(
        "flag_fragmented",
        _B,
        "> 1 awakening > 5 min or WASO > 20 min (null when both are missing)",
        source="Ohayon et al. 2017",
    ),
    Col(
        "flag_irregular",
        _B,
        "SRI < 80 or bedtime/wake SD > 60 min over 14 nights (null when all are missing)",
        source="Phillips et al. 2017; METRICS.md",
    ),
    Col("balance_version", _S, "Version of the balance index definition and weights"),
    Col("model_version", _S, "Version of the sleep-quality model file that scored the row"),
)

DAILY_LOAD_COLS: tuple[Col, ...] = (
    Col("date", pa.date32(), "Local date (of the workout start)", nullable=False),
    Col(
        "trimp",
        _F,
        "Banister TRIMP: sum over workouts of Δt·HRr·a·e^(b·HRr) from workout HR "
        "samples, else avg HR × duration",
        "AU",
        "Morton, Fitz-Clarke & Banister 1990",
    ),
    Col("trimp_source", _S, "hr_samples | avg_hr (joined with + when both occurred)"),
    Col(
        "hr_max_source",
        _S,
        "settings | tanaka (208 − 0.7·age in the workout year) | default (180 bpm = Tanaka at "
        "40 y, no birth year); never from observed data, so a partial recompute equals a full one",
    ),
    Col("hr_rest_source", _S, "settings | default (60 bpm)"),
    Col(
        "srpe_load",
        _F,
        "Session-RPE load: sum of RPE × minutes (null without RPE)",
        "AU",
        "Foster et al. 2001",
    ),
    Col("n_workouts", _I, "Workouts that day", "count"),
    Col("workout_min", _F, "Workout minutes that day", "min"),
    Col("week_load", _F, "Sum of TRIMP over the last 7 days", "AU", "Foster 1998"),
    Col("load_n7", pa.uint32(), "Days of the 7-day window inside the load calendar", "days"),
    Col("atl", _F, "Acute load: EWMA of TRIMP, N = 7 (λ = 2/(N+1))", "AU", "METRICS.md load"),
    Col("ctl", _F, "Chronic load: EWMA of TRIMP, N = 42", "AU", "METRICS.md load"),
    Col(
        "tsb", _F, "Training stress balance: CTL − ATL of the previous day", "AU", "METRICS.md load"
    ),
    Col(
        "acwr", _F, "EWMA acute:chronic workload ratio, N = 7 / 28", "ratio", "Williams et al. 2017"
    ),
    Col("monotony", _F, "Mean / SD of daily TRIMP over 7 days", "ratio", "Foster 1998"),
    Col("strain", _F, "week_load × monotony", "AU", "Foster 1998"),
)


GOLD: dict[str, Table] = {
    t.name: t
    for t in (
        _gold(
            "nightly_features",
            "One row per user and sleep date (every calendar date between a user's first and "
            "last night; missing nights have null values): sleep, HRV, heart rate, circadian "
            "regularity and personal baselines. Clock times are hours after local midnight of "
            "the day before sleep_date (23.5 = 23:30 the evening before, 31.0 = 07:00)",
            NIGHTLY_COLS,
            ("sleep_date",),
            "sleep_date",
        ),
        _gold(
            "daily_load",
            "One row per user and local date between the first and last workout (rest days 0): "
            "training load and its ratios",
            DAILY_LOAD_COLS,
            ("date",),
            "date",
        ),
        _gold(
            "scores",
            "One row per user and sleep date: autonomic balance and sleep-quality estimates",
            (
                Col("sleep_date", pa.date32(), "Local wake-up date", nullable=False),
                *SCORE_COLS,
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
                Col(
                    "suggestions",
                    pa.string(),
                    "JSON list of suggestions: {rule_id, metric, value, reference, source, text, "
                    "priority, weeks_out_of_range}",
                    source="METRICS.md Suggestions",
                ),
                Col("headline", pa.string(), "Headline state of the week in plain words"),
                Col(
                    "attention",
                    pa.float64(),
                    "How much the week needs the coach's attention (roster order; higher first)",
                ),
                Col(
                    "insights",
                    pa.string(),
                    "JSON list of behaviour associations shown for the person",
                    source="METRICS.md Behaviour associations",
                ),
                Col(
                    "nights_with_data", pa.int32(), "Nights of the week with a main sleep", "count"
                ),
                Col("coach_version", pa.string(), "Version of the suggestion rules"),
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
        "Definition sources: `METRICS.md` and `DESIGN.md` are `docs/METRICS.md` and "
        "`docs/DESIGN.md` in the tunewell repository; the literature they cite is listed there. "
        "`scores` is written by the nightly flow after the features, `weekly_summary` by "
        "`tunewell weekly`.",
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
            cells = [f"`{c.name}`", str(c.type), c.unit, c.meaning, c.source]
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        lines.append("")
    return "\n".join(lines)
