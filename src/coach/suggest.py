"""Weekly lifestyle suggestions: small declared rules over one person's week.

Each rule names the inputs it reads, its threshold with the METRICS.md source, a sentence
template and a priority, so the page can show where every sentence came from and a contract test
can walk the registry. Rules say what was measured and offer lifestyle levers only (sleep
opportunity and timing, regularity, wind-down and light, caffeine and alcohol timing, training
load and recovery days); a signal out of range for three weeks in a row adds a pointer to a
qualified professional instead of anything more specific.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import polars as pl

from tunewell.coach.week import IsoWeek, PersonData

RULES_VERSION = "coach-rules-1"
MAX_SUGGESTIONS = 3
PERSISTENT_WEEKS = 3

DISCLAIMER = (
    "Not medical advice. tunewell describes wellness patterns in wearable data. It is not a "
    "medical device: it does not diagnose, treat or give medical advice. For any health "
    "concern, talk to a qualified professional."
)
PROFESSIONAL = (
    "This has been out of range for {n} weeks in a row: consider talking it over with a "
    "qualified professional."
)

# Thresholds (METRICS.md); each rule cites the one it uses.
SLEEP_NEED_MIN = 7 * 60  # Hirshkowitz et al. 2015; Watson et al. 2015
SRI_LOW = 80.0  # METRICS.md sleep-quality flag `irregular`
TIMING_SD_MAX_MIN = 60.0  # METRICS.md bedtime / wake SD
BALANCED_BAND = 100 / 3 * 0.5  # METRICS.md index scale: |index| ≤ SWC in z units
ACWR_SPIKE = 1.5  # Gabbett 2016
ACWR_USUAL_HI = 1.3  # Gabbett 2016
MONOTONY_HIGH = 2.0  # Foster 1998
MIN_VALID_NIGHTS = 4  # acute 7-day mean needs ≥ 4 valid days (Plews et al. 2014)


@dataclass(frozen=True)
class Evidence:
    """What a rule measured: the person's value and what it was compared with."""

    value: float
    value_text: str
    reference: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    metric: str
    inputs: tuple[str, ...]  # "table.column" read by the rule
    threshold: str
    source: str
    template: str  # formatted with value, reference and the evidence's fields
    priority: int  # higher first
    check: Callable[[PersonData, IsoWeek], Evidence | None]
    yields_to: tuple[str, ...] = ()  # silent when one of these fired the same week
    persistent_advice: bool = True  # a 3-week run points to a qualified professional
    uses_insights: tuple[str, ...] = ()  # insight outcomes that may back the sentence

    @property
    def needs_scores(self) -> bool:
        return any(i.startswith("scores.") for i in self.inputs)


@dataclass(frozen=True)
class Suggestion:
    rule_id: str
    metric: str
    value: float
    value_text: str
    reference: str
    threshold: str
    source: str
    text: str
    priority: int
    weeks_out_of_range: int = 1

    def to_json(self) -> dict:
        return asdict(self)


# ---- helpers -----------------------------------------------------------------------------------


def _vals(df: pl.DataFrame, col: str) -> list[float]:
    if col not in df.columns:
        return []
    return [float(v) for v in df[col].to_list() if v is not None and not _nan(v)]


def _nan(v: object) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _last(df: pl.DataFrame, col: str) -> float | None:
    v = _vals(df, col)
    return v[-1] if v else None


def _last_row(df: pl.DataFrame, cols: tuple[str, ...]) -> dict | None:
    """Latest night of the week on which all ``cols`` are present."""
    if df.is_empty() or any(c not in df.columns for c in cols):
        return None
    ok = df.filter(pl.all_horizontal(pl.col(c).is_not_null() & pl.col(c).is_finite() for c in cols))
    return ok.row(-1, named=True) if ok.height else None


def hm(minutes: float) -> str:
    h, m = divmod(round(minutes), 60)
    return f"{h} h {m:02d} min"


def clock(hours: float) -> str:
    """Clock time of hours after midnight of the day before the sleep date (31.0 → 07:00)."""
    m = round(hours * 60) % (24 * 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def _count(df: pl.DataFrame, expr: pl.Expr) -> int:
    return int(df.select(expr.fill_null(False).sum()).item()) if df.height else 0


# ---- checks ------------------------------------------------------------------------------------


def _too_little_data(d: PersonData, wk: IsoWeek) -> Evidence | None:
    n = d.nights_in(wk)
    sleep = _count(n, pl.col("sleep_ok"))
    hrv = _count(n, pl.col("hrv_ok"))
    # Missing HRV only counts against the week when this person's devices have recorded it in
    # the 4 weeks before: some sources never do (Apple exports SDNN, not RMSSD), and wearing
    # them more would not help.
    before = d.nights.filter(
        pl.col("sleep_date").is_between(wk.monday - timedelta(days=28), wk.monday)
    )
    if _count(before, pl.col("hrv_ok")) == 0:
        hrv = MIN_VALID_NIGHTS
    if sleep >= MIN_VALID_NIGHTS and hrv >= MIN_VALID_NIGHTS:
        return None
    what = "a recorded main sleep" if sleep < MIN_VALID_NIGHTS else "heart-rate variability"
    k = min(sleep, hrv) if sleep < MIN_VALID_NIGHTS else hrv
    return Evidence(k, f"{k} of 7 nights", f"at least {MIN_VALID_NIGHTS} of 7", {"what": what})


def _short_sleep_need(d: PersonData, wk: IsoWeek) -> Evidence | None:
    tst = _vals(d.nights_in(wk).filter(pl.col("sleep_ok").fill_null(False)), "tst_min")
    if len(tst) < 3:
        return None
    mean = sum(tst) / len(tst)
    if mean >= SLEEP_NEED_MIN:
        return None
    short = sum(t < SLEEP_NEED_MIN for t in tst)
    return Evidence(
        round(mean, 1), hm(mean), "7 h 00 min", {"short": str(short), "n": str(len(tst))}
    )


def _short_sleep_norm(d: PersonData, wk: IsoWeek) -> Evidence | None:
    r = _last_row(d.nights_in(wk), ("tst_min_b7", "tst_min_mu60", "tst_min_swc"))
    if r is None or r.get("tst_min_calibrating"):
        return None
    lo = r["tst_min_mu60"] - r["tst_min_swc"]
    if r["tst_min_b7"] >= lo:
        return None
    return Evidence(
        round(r["tst_min_b7"], 1),
        hm(r["tst_min_b7"]),
        f"{hm(r['tst_min_mu60'])} (your usual; lower edge {hm(lo)})",
    )


def _irregular(d: PersonData, wk: IsoWeek) -> Evidence | None:
    n = d.nights_in(wk)
    sri = _last(n, "sri")
    bed = _last(n, "bedtime_sd_min")
    wake = _last(n, "waketime_sd_min")
    sjl = _last(n, "social_jetlag_h")
    extra = f" Social jet lag was {sjl:.1f} h." if sjl is not None and sjl >= 1 else ""
    if sri is not None and sri < SRI_LOW:
        return Evidence(
            round(sri, 1),
            f"Sleep Regularity Index {sri:.0f}",
            f"{SRI_LOW:.0f} or more",
            {"extra": extra},
        )
    for name, v in (("bedtime", bed), ("wake time", wake)):
        if v is not None and v > TIMING_SD_MAX_MIN:
            return Evidence(
                round(v, 1),
                f"{name} SD {v:.0f} min over 14 nights",
                f"{TIMING_SD_MAX_MIN:.0f} min or less",
                {"extra": extra},
            )
    return None


def _midpoint_drift(d: PersonData, wk: IsoWeek) -> Evidence | None:
    r = _last_row(d.nights_in(wk), ("midpoint_h_b7", "midpoint_h_mu60", "midpoint_h_swc"))
    if r is None or r.get("midpoint_h_calibrating"):
        return None
    hi = r["midpoint_h_mu60"] + r["midpoint_h_swc"]
    if r["midpoint_h_b7"] <= hi:
        return None
    late = (r["midpoint_h_b7"] - r["midpoint_h_mu60"]) * 60
    return Evidence(
        round(r["midpoint_h_b7"], 2),
        clock(r["midpoint_h_b7"]),
        f"{clock(r['midpoint_h_mu60'])} (your usual; upper edge {clock(hi)})",
        {"late": f"{late:.0f}"},
    )


def _flag_nights(d: PersonData, wk: IsoWeek, flag: str) -> pl.DataFrame:
    s = d.scores_in(wk)
    if flag not in s.columns or s.is_empty():
        return s.head(0)
    return s.filter(pl.col(flag).fill_null(False))


def _flagged_median(
    d: PersonData, wk: IsoWeek, flag: str, col: str, min_nights: int
) -> tuple[int, float] | None:
    """How many nights of the week the score flagged, and the median of the measure behind the
    flag on those nights: the evidence a flag-based rule shows (None below ``min_nights``)."""
    hits = _flag_nights(d, wk, flag)
    if hits.height < min_nights:
        return None
    v = _vals(d.nights_in(wk).join(hits.select("sleep_date"), on="sleep_date"), col)
    return hits.height, sorted(v)[len(v) // 2] if v else float("nan")


def _long_latency(d: PersonData, wk: IsoWeek) -> Evidence | None:
    if (hit := _flagged_median(d, wk, "flag_long_latency", "sol_min", 2)) is None:
        return None
    n, med = hit
    return Evidence(round(med, 1), f"{med:.0f} min", "30 min or less", {"n": str(n)})


def _fragmented(d: PersonData, wk: IsoWeek) -> Evidence | None:
    if (hit := _flagged_median(d, wk, "flag_fragmented", "waso_min", 3)) is None:
        return None
    n, med = hit
    return Evidence(
        round(med, 1),
        f"{med:.0f} min awake after falling asleep",
        "20 min or less and at most 1 awakening > 5 min",
        {"n": str(n)},
    )


def _state_nights(d: PersonData, wk: IsoWeek, state: str) -> pl.DataFrame:
    s = d.scores_in(wk)
    if s.is_empty():
        return s
    return s.filter(pl.col("balance_state") == state)


def _arousal(d: PersonData, wk: IsoWeek) -> Evidence | None:
    hits = _state_nights(d, wk, "arousal-leaning")
    if hits.height < 2:
        return None
    low = min(_vals(hits, "balance_index"))
    return Evidence(
        round(low, 1),
        f"{low:.0f}",
        f"within ±{BALANCED_BAND:.0f} of your usual (0)",
        {"n": str(hits.height)},
    )


def _hrv_trend(d: PersonData, wk: IsoWeek) -> Evidence | None:
    cols = ("ln_rmssd_b7", "ln_rmssd_mu60", "ln_rmssd_swc", "ln_rmssd_cv7")
    now = _last_row(d.nights_in(wk), cols)
    before = _last_row(d.nights_in(wk.shift(-1)), ("ln_rmssd_cv7",))
    if now is None or before is None or now.get("ln_rmssd_calibrating"):
        return None
    lo = now["ln_rmssd_mu60"] - now["ln_rmssd_swc"]
    if not (now["ln_rmssd_b7"] < lo and now["ln_rmssd_cv7"] > before["ln_rmssd_cv7"]):
        return None
    return Evidence(
        round(now["ln_rmssd_b7"], 3),
        f"{now['ln_rmssd_b7']:.2f} (RMSSD {math.exp(now['ln_rmssd_b7']):.0f} ms)",
        f"{now['ln_rmssd_mu60']:.2f} ± {now['ln_rmssd_swc']:.2f} (your usual ± SWC)",
        {"cv_before": f"{before['ln_rmssd_cv7']:.1f}", "cv_now": f"{now['ln_rmssd_cv7']:.1f}"},
    )


def _week_load(d: PersonData, wk: IsoWeek) -> tuple[float | None, float | None]:
    ld = d.load_in(wk)
    acwr, mono = _vals(ld, "acwr"), _vals(ld, "monotony")
    return (max(acwr) if acwr else None), (max(mono) if mono else None)


def _load_text(acwr: float | None, mono: float | None, spike: float) -> tuple[float, str] | None:
    if acwr is not None and acwr > spike:
        return acwr, f"ACWR {acwr:.2f}"
    if mono is not None and mono > MONOTONY_HIGH:
        return mono, f"monotony {mono:.1f}"
    return None


def _load_spike_low_balance(d: PersonData, wk: IsoWeek) -> Evidence | None:
    acwr, mono = _week_load(d, wk)
    hit = _load_text(acwr, mono, ACWR_SPIKE)
    s = d.scores_in(wk)
    bal = _vals(s, "balance_index")
    if hit is None or not bal:
        return None
    mean = sum(bal) / len(bal)
    if mean >= -BALANCED_BAND and _state_nights(d, wk, "arousal-leaning").is_empty():
        return None
    return Evidence(
        round(hit[0], 2),
        hit[1],
        f"ACWR 1.5 or less, monotony {MONOTONY_HIGH:.0f} or less",
        {"bal": f"{mean:.0f}".replace("-", "−")},
    )


def _overreaching(d: PersonData, wk: IsoWeek) -> Evidence | None:
    hits = _state_nights(d, wk, "inhibition-leaning")
    acwr, mono = _week_load(d, wk)
    hit = _load_text(acwr, mono, ACWR_USUAL_HI)
    if hits.height < 2 or hit is None:
        return None
    return Evidence(
        round(hit[0], 2),
        hit[1],
        f"ACWR 0.8–{ACWR_USUAL_HI}, monotony {MONOTONY_HIGH:.0f} or less",
        {"n": str(hits.height)},
    )


# ---- the registry ------------------------------------------------------------------------------

_BAL_SRC = "METRICS.md Arousal / inhibition balance (balanced within ±17 index points)"

RULES: tuple[Rule, ...] = (
    Rule(
        "too_little_data",
        "nights with data",
        ("nightly_features.sleep_ok", "nightly_features.hrv_ok"),
        f"≥ {MIN_VALID_NIGHTS} valid nights of 7",
        "METRICS.md Personal baselines: a 7-day mean needs ≥ 4 valid days (Plews et al. 2014)",
        "Only {value} had {what} (needed: {reference}, Plews et al. 2014), so this week's "
        "picture is thin. Wearing the device through the night, charged and snug, makes next "
        "week's page reliable.",
        90,
        _too_little_data,
        persistent_advice=False,
    ),
    Rule(
        "load_spike_low_balance",
        "training load (ACWR / monotony)",
        ("daily_load.acwr", "daily_load.monotony", "scores.balance_index", "scores.balance_state"),
        f"ACWR > {ACWR_SPIKE} or monotony > {MONOTONY_HIGH:.0f}, with balance below −17",
        "METRICS.md Training load: ACWR > 1.5 a spike (Gabbett 2016), monotony > 2 high "
        "(Foster 1998), never the sole trigger (Impellizzeri et al. 2020)",
        "Training load jumped ({value}; usual: {reference}, Gabbett 2016 / Foster 1998) while "
        "your balance index averaged {bal}, on the arousal side. Swap the next hard session for "
        "an easy one or a rest day, and build back up gradually.",
        85,
        _load_spike_low_balance,
    ),
    Rule(
        "short_sleep_need",
        "sleep duration",
        ("nightly_features.tst_min", "nightly_features.sleep_ok"),
        "mean ≥ 7 h a night",
        "METRICS.md Sleep duration: ≥ 7 h for adults (Hirshkowitz et al. 2015; Watson et al. 2015)",
        "Sleep averaged {value} a night ({short} of {n} nights under 7 h), below the "
        "{reference} adults need (Hirshkowitz et al. 2015). Give sleep a longer opportunity: "
        "about 8 h in bed, with a set wind-down time and the usual wake time.",
        80,
        _short_sleep_need,
    ),
    Rule(
        "overreaching_check",
        "training load with inhibition-leaning balance",
        ("daily_load.acwr", "daily_load.monotony", "scores.balance_state"),
        f"inhibition-leaning on ≥ 2 nights with ACWR > {ACWR_USUAL_HI} or monotony > 2",
        _BAL_SRC + "; METRICS.md Training load: ACWR 0.8–1.3 usual (Gabbett 2016)",
        "Balance leaned towards inhibition on {n} nights while training load was high ({value}; "
        "usual: {reference}). After hard training this can mean fatigue is building up: plan a "
        "few easier days and check in on how training feels.",
        80,
        _overreaching,
    ),
    Rule(
        "arousal_balance",
        "balance index",
        ("scores.balance_state", "scores.balance_index"),
        "arousal-leaning on ≥ 2 nights",
        _BAL_SRC,
        "Your balance index leaned towards arousal on {n} nights (lowest {value}; balanced is "
        "{reference}). Favour easy sessions, an earlier night and a calm wind-down until it is "
        "back in your usual range.",
        75,
        _arousal,
        uses_insights=("ln_rmssd", "balance_index"),
    ),
    Rule(
        "hrv_falling_cv_rising",
        "7-day lnRMSSD",
        (
            "nightly_features.ln_rmssd_b7",
            "nightly_features.ln_rmssd_mu60",
            "nightly_features.ln_rmssd_swc",
            "nightly_features.ln_rmssd_cv7",
        ),
        "7-day mean below usual − SWC with a rising CV",
        "METRICS.md Personal baselines: SWC = 0.5 SD (Hopkins 2004); falling lnRMSSD with "
        "rising CV (Plews et al. 2012)",
        "Your 7-day lnRMSSD fell to {value}, below your usual range {reference}, while its "
        "night-to-night variation rose (CV {cv_before} % → {cv_now} %). In athletes this pattern "
        "has come before a run of poor form (Plews et al. 2012): keep the next days light and "
        "give sleep extra time.",
        70,
        _hrv_trend,
        uses_insights=("ln_rmssd",),
    ),
    Rule(
        "short_sleep_norm",
        "7-day sleep duration",
        (
            "nightly_features.tst_min_b7",
            "nightly_features.tst_min_mu60",
            "nightly_features.tst_min_swc",
        ),
        "7-day mean ≥ usual − SWC",
        "METRICS.md Personal baselines: SWC = 0.5 SD (Hopkins 2004; Buchheit 2014)",
        "Your 7-day sleep average was {value}, shorter than your usual {reference} by more than "
        "the smallest worthwhile change (Hopkins 2004). Bring bedtime a little earlier on the "
        "nights that ran short.",
        60,
        _short_sleep_norm,
        yields_to=("short_sleep_need",),
    ),
    Rule(
        "irregular_timing",
        "sleep regularity",
        (
            "nightly_features.sri",
            "nightly_features.bedtime_sd_min",
            "nightly_features.waketime_sd_min",
            "nightly_features.social_jetlag_h",
        ),
        f"SRI ≥ {SRI_LOW:.0f}; bed and wake time SD ≤ {TIMING_SD_MAX_MIN:.0f} min",
        "METRICS.md Sleep: Sleep Regularity Index (Phillips et al. 2017), bedtime / wake SD; "
        "irregular flag SRI < 80 or SD > 60 min",
        "Sleep timing was irregular: {value} (steady sleepers: {reference}, Phillips et al. "
        "2017).{extra} Keep bed and wake times within about an hour, weekends included; "
        "daylight soon after waking helps anchor the clock.",
        55,
        _irregular,
    ),
    Rule(
        "long_latency",
        "sleep onset latency",
        ("scores.flag_long_latency", "nightly_features.sol_min"),
        "SOL ≤ 30 min",
        "METRICS.md Sleep: good-quality thresholds, SOL ≤ 30 min (Ohayon et al. 2017)",
        "On {n} nights it took more than 30 min to fall asleep (median {value}; good-quality "
        "sleep: {reference}, Ohayon et al. 2017). A screen-free wind-down, caffeine only before "
        "midday, and going to bed when sleepy may help.",
        50,
        _long_latency,
    ),
    Rule(
        "fragmented_sleep",
        "wake after sleep onset",
        ("scores.flag_fragmented", "nightly_features.waso_min"),
        "WASO ≤ 20 min and ≤ 1 awakening > 5 min",
        "METRICS.md Sleep: good-quality thresholds (Ohayon et al. 2017)",
        "Sleep was broken on {n} nights (median {value}; good-quality sleep: {reference}, "
        "Ohayon et al. 2017). A dark, cool, quiet bedroom helps, and so does finishing alcohol "
        "and large meals at least 3 h before bed.",
        45,
        _fragmented,
    ),
    Rule(
        "late_midpoint_drift",
        "sleep midpoint",
        (
            "nightly_features.midpoint_h_b7",
            "nightly_features.midpoint_h_mu60",
            "nightly_features.midpoint_h_swc",
        ),
        "7-day mean midpoint ≤ usual + SWC",
        "METRICS.md Sleep: midpoint (Roenneberg, MCTQ); Personal baselines SWC (Hopkins 2004)",
        "Your sleep midpoint drifted later: 7-day mean {value}, {late} min after your usual "
        "{reference}. Dim lights and screens in the last hour before bed and get daylight early "
        "to pull the clock back.",
        40,
        _midpoint_drift,
    ),
)
REGISTRY: dict[str, Rule] = {r.id: r for r in RULES}


def fire(rule: Rule, d: PersonData, wk: IsoWeek) -> Evidence | None:
    if rule.needs_scores and not d.has_scores:
        return None
    return rule.check(d, wk)


def _text(rule: Rule, ev: Evidence) -> str:
    return rule.template.format(value=ev.value_text, reference=ev.reference, **ev.fields)


def _persistence(rule: Rule, d: PersonData, wk: IsoWeek) -> int:
    """Consecutive weeks, ending with ``wk``, in which the rule fired (up to 3)."""
    n = 1
    for k in range(1, PERSISTENT_WEEKS):
        prev = wk.shift(-k)
        if fire(rule, d.at(prev), prev) is None:
            break
        n += 1
    return n


def suggest(d: PersonData, wk: IsoWeek | None = None) -> list[Suggestion]:
    """Up to three suggestions for the week, highest priority first."""
    wk = wk or d.week
    fired: dict[str, tuple[Rule, Evidence]] = {}
    for rule in RULES:
        ev = fire(rule, d, wk)
        if ev is not None:
            fired[rule.id] = (rule, ev)
    out: list[Suggestion] = []
    for rule, ev in fired.values():
        if any(y in fired for y in rule.yields_to):
            continue
        text = _text(rule, ev)
        weeks = _persistence(rule, d, wk) if rule.persistent_advice else 1
        if weeks >= PERSISTENT_WEEKS:
            text += " " + PROFESSIONAL.format(n=weeks)
        out.append(
            Suggestion(
                rule.id,
                rule.metric,
                ev.value,
                ev.value_text,
                ev.reference,
                rule.threshold,
                rule.source,
                text,
                rule.priority,
                weeks,
            )
        )
    out.sort(key=lambda s: (-s.priority, s.rule_id))
    return out[:MAX_SUGGESTIONS]


def keep_doing(d: PersonData, wk: IsoWeek | None = None) -> str:
    """The line shown when no rule fired, naming what was in range."""
    wk = wk or d.week
    n = d.nights_in(wk)
    parts: list[str] = []
    tst = _vals(n.filter(pl.col("sleep_ok").fill_null(False)), "tst_min")
    if tst:
        parts.append(f"sleep averaged {hm(sum(tst) / len(tst))} (7 h or more)")
    sri = _last(n, "sri")
    if sri is not None:
        parts.append(f"timing was regular (Sleep Regularity Index {sri:.0f}, 80 or more)")
    bal = _vals(d.scores_in(wk), "balance_index")
    if bal:
        m = round(sum(bal) / len(bal))
        parts.append(
            f"balance stayed near your usual (mean {m:+d})"
            if m
            else "balance stayed at your usual (mean 0)"
        )
    said = "; ".join(parts) if parts else "nothing this week was out of range"
    return f"Keep doing what you are doing: {said}."


def suggestions_json(items: list[Suggestion]) -> str:
    return json.dumps([s.to_json() for s in items], ensure_ascii=False)
