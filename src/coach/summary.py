"""One person's week as the coach reads it: headline, the week against the usual range, trends,
suggestions with their evidence, behaviour associations and data coverage.

Built from ``PersonData`` only; the pages (``report``) and the ``weekly_summary`` rows format what
is here, so the HTML page, the Markdown summary and the table always say the same thing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import polars as pl

from tunewell.coach import charts
from tunewell.coach.charts import Chart
from tunewell.coach.insights import Insight, insights
from tunewell.coach.suggest import (
    BALANCED_BAND,
    DISCLAIMER,
    REGISTRY,
    RULES_VERSION,
    SLEEP_NEED_MIN,
    Suggestion,
    clock,
    hm,
    keep_doing,
    suggest,
)
from tunewell.coach.week import TREND_WEEKS, IsoWeek, PersonData

CHART_NIGHTS = 28
EFFICIENCY_MIN = 85.0  # Ohayon et al. 2017
STATE_CLASS = {
    "arousal-leaning": "arousal",
    "inhibition-leaning": "inhibition",
    "balanced": "balanced",
    "calibrating": "calibrating",
}


@dataclass(frozen=True)
class SuggestionView:
    s: Suggestion
    backing: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return self.s.to_json() | {"backing": list(self.backing)}


@dataclass(frozen=True)
class MetricRow:
    name: str
    week: str
    usual: str
    status: str  # in range | below | above | not measured …
    source: str


@dataclass(frozen=True)
class NightRow:
    date: str
    sleep: str
    efficiency: str
    bed: str
    wake: str
    rmssd: str
    resting_hr: str
    balance: str
    quality: str


@dataclass(frozen=True)
class ChartBlock:
    key: str
    heading: str
    chart: charts.Chart | None
    missing: str = ""  # said instead of a chart when the data is not there


@dataclass(frozen=True)
class CoverageRow:
    kind: str
    source: str
    nights: int


@dataclass
class PersonWeek:
    user_id: str
    week: IsoWeek
    headline: str
    state: str | None
    state_class: str
    scores_status: str  # ok | missing | calibrating | unmeasured
    scores_note: str
    attention: float
    suggestions: list[SuggestionView]
    keep_doing: str | None
    insights: list[Insight]
    metrics: list[MetricRow]
    nights: list[NightRow]
    charts: list[ChartBlock]
    trends: list[ChartBlock]
    coverage: list[CoverageRow]
    nights_with_data: int
    spark_rmssd: Chart
    spark_sleep: Chart
    rmssd_week: str
    sleep_week: str
    disclaimer: str = DISCLAIMER
    lab_html: str = ""
    lab_markdown: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def suggestions_json(self) -> str:
        return json.dumps([v.to_json() for v in self.suggestions], ensure_ascii=False)

    @property
    def insights_json(self) -> str:
        return json.dumps([i.to_json() for i in self.insights], ensure_ascii=False)


def signed(v: float) -> str:
    """Whole-number index with its sign, without a "-0"."""
    r = round(v)
    return f"{r:+d}".replace("-", "−") if r else "0"


def _mean(vals: list[float]) -> float | None:
    vs = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vs) / len(vs) if vs else None


def _col(df: pl.DataFrame, c: str) -> list:
    return df[c].to_list() if c in df.columns else [None] * df.height


def _last(df: pl.DataFrame, c: str) -> float | None:
    vs = [v for v in _col(df, c) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return vs[-1] if vs else None


def _status(v: float | None, lo: float | None, hi: float | None) -> str:
    if v is None:
        return "not measured"
    if lo is None or hi is None:
        return "no usual range yet"
    return "below" if v < lo else "above" if v > hi else "in range"


def _scores_status(d: PersonData, wk: IsoWeek) -> tuple[str, str]:
    if not d.has_scores:
        return "missing", (
            "Balance and sleep-quality scores are missing for this lake (the scoring step has "
            "not run yet); the measured features below are shown without them."
        )
    s = d.scores_in(wk)
    states = [x for x in _col(s, "balance_state") if x]
    if not states:
        return "unmeasured", "No balance markers were measured this week."
    if all(x == "calibrating" for x in states):
        return "calibrating", (
            "Balance is calibrating: personal baselines need 14 valid nights within 60 days."
        )
    return "ok", ""


def _state(d: PersonData, wk: IsoWeek) -> tuple[str | None, int, int]:
    states = [x for x in _col(d.scores_in(wk), "balance_state") if x and x != "calibrating"]
    if not states:
        return None, 0, 0
    top = max(sorted(set(states)), key=states.count)
    return top, states.count(top), len(states)


def _attention(sugs: list[Suggestion], nights: int) -> float:
    score = float(sum(s.priority for s in sugs))
    score += 50.0 * sum(s.weeks_out_of_range >= 3 for s in sugs)
    return score + (30.0 if nights == 0 else 0.0)


def _night_rows(d: PersonData, wk: IsoWeek) -> list[NightRow]:
    n = d.nights_in(wk)
    s = d.scores_in(wk)
    by_date = {r["sleep_date"]: r for r in n.to_dicts()}
    sc = {r["sleep_date"]: r for r in s.to_dicts()}
    rows = []
    for i in range(7):
        day = wk.monday + timedelta(days=i)
        r = by_date.get(day, {})
        q = sc.get(day, {})

        def f(v, fmt):
            return fmt(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else "–"

        bal = "–"
        if q.get("balance_index") is not None:
            bal = f"{signed(q['balance_index'])} ({q.get('balance_state') or '–'})"
        elif q.get("balance_state"):
            bal = q["balance_state"]
        rows.append(
            NightRow(
                day.strftime("%a %d %b"),
                f(r.get("tst_min"), hm),
                f(r.get("efficiency_pct"), lambda v: f"{v:.0f} %"),
                f(r.get("onset_h"), clock),
                f(r.get("offset_h"), clock),
                f(r.get("rmssd_ms"), lambda v: f"{v:.0f} ms"),
                f(r.get("resting_hr"), lambda v: f"{v:.0f} bpm"),
                bal,
                f(q.get("sleep_quality"), lambda v: f"{v:.0f}"),
            )
        )
    return rows


def _band(row_lo, row_hi):
    return (row_lo, row_hi) if row_lo is not None and row_hi is not None else None


def _metrics(d: PersonData, wk: IsoWeek, status: str) -> list[MetricRow]:
    n = d.nights_in(wk)
    s = d.scores_in(wk)
    out: list[MetricRow] = []
    bal = _mean(_col(s, "balance_index"))
    out.append(
        MetricRow(
            "Balance index",
            signed(bal) if bal is not None else {"missing": "scores missing"}.get(status, "–"),
            f"0 ± {BALANCED_BAND:.0f} (balanced)",
            _status(bal, -BALANCED_BAND, BALANCED_BAND) if bal is not None else status,
            "METRICS.md Arousal / inhibition balance",
        )
    )
    ln = _mean(_col(n, "ln_rmssd"))
    mu, swc = _last(n, "ln_rmssd_mu60"), _last(n, "ln_rmssd_swc")
    usual = "calibrating"
    lo = hi = None
    if mu is not None and swc is not None:
        lo, hi = mu - swc, mu + swc
        usual = f"{math.exp(lo):.0f}–{math.exp(hi):.0f} ms (60-day mean ± SWC)"
    out.append(
        MetricRow(
            "Nightly RMSSD",
            f"{math.exp(ln):.0f} ms (ln {ln:.2f})" if ln is not None else "–",
            usual,
            _status(ln, lo, hi),
            "METRICS.md nightly RMSSD; SWC (Hopkins 2004)",
        )
    )
    for name, col, fmt in (
        ("Resting HR", "resting_hr", lambda v: f"{v:.0f} bpm"),
        ("Sleep duration", "tst_min", hm),
    ):
        v = _mean(_col(n, col))
        mu, swc = _last(n, f"{col}_mu60"), _last(n, f"{col}_swc")
        lo = hi = None
        usual = "calibrating"
        if mu is not None and swc is not None:
            lo, hi = mu - swc, mu + swc
            usual = f"{fmt(lo)} – {fmt(hi)} (60-day mean ± SWC)"
        if col == "tst_min":
            usual += "; need ≥ 7 h"
        st = _status(v, lo, hi)
        if col == "tst_min" and v is not None and v < SLEEP_NEED_MIN:
            st = "below need"
        out.append(
            MetricRow(
                name,
                fmt(v) if v is not None else "–",
                usual,
                st,
                "METRICS.md Personal baselines"
                + ("; Hirshkowitz et al. 2015" if col == "tst_min" else ""),
            )
        )
    eff = _mean(_col(n, "efficiency_pct"))
    out.append(
        MetricRow(
            "Sleep efficiency",
            f"{eff:.0f} %" if eff is not None else "–",
            f"≥ {EFFICIENCY_MIN:.0f} %",
            _status(eff, EFFICIENCY_MIN, 100.0),
            "METRICS.md Sleep: good-quality thresholds (Ohayon et al. 2017)",
        )
    )
    before = d.nights.filter(
        pl.col("sleep_date").is_between(wk.monday - timedelta(days=28), wk.monday - timedelta(1))
    )
    for name, col, sd_col in (
        ("Bedtime", "onset_h", "bedtime_sd_min"),
        ("Wake time", "offset_h", "waketime_sd_min"),
    ):
        v = _mean(_col(n, col))
        prev = _mean(_col(before, col))
        sd = _last(n, sd_col)
        usual = f"{clock(prev)} (mean of the 4 weeks before)" if prev is not None else "–"
        st = "not measured" if v is None else (f"SD {sd:.0f} min over 14 nights" if sd else "–")
        if sd is not None and sd > 60:
            st += " (irregular: > 60)"
        out.append(
            MetricRow(
                name,
                clock(v) if v is not None else "–",
                usual,
                st,
                "METRICS.md bedtime / wake SD",
            )
        )
    return out


def _day_labels(days: list) -> list[str]:
    return [d.strftime("%d %b") for d in days]


def _charts(d: PersonData, wk: IsoWeek, status: str) -> list[ChartBlock]:
    end = wk.sunday
    days = [end - timedelta(days=CHART_NIGHTS - 1 - i) for i in range(CHART_NIGHTS)]
    recent = d.nights.filter(pl.col("sleep_date").is_between(days[0], end))
    by = {r["sleep_date"]: r for r in recent.to_dicts()}
    labels = _day_labels(days)
    week = (CHART_NIGHTS - 7, CHART_NIGHTS)
    n = d.nights_in(wk)
    out: list[ChartBlock] = []

    def vals(col):
        return [by.get(x, {}).get(col) for x in days]

    def rng(vs):
        vs = [v for v in vs if v is not None]
        return (min(vs), max(vs)) if vs else None

    # balance
    sc = d.scores.filter(pl.col("sleep_date").is_between(days[0], end))
    sby = {r["sleep_date"]: r for r in sc.to_dicts()}
    bal = [sby.get(x, {}).get("balance_index") for x in days]
    if any(v is not None for v in bal):
        wkv = [v for v in bal[week[0] :] if v is not None]
        alt = (
            f"Balance index for the last {CHART_NIGHTS} nights; this week "
            f"{signed(min(wkv))} to {signed(max(wkv))}; balanced band "
            f"±{BALANCED_BAND:.0f} around 0."
            if wkv
            else f"Balance index for the last {CHART_NIGHTS} nights; none this week."
        )
        out.append(
            ChartBlock(
                "balance",
                "Balance index",
                charts.series_chart(
                    "Balance index (0 = your usual; below 0 arousal-leaning)",
                    alt,
                    labels,
                    bal,
                    band=(-BALANCED_BAND, BALANCED_BAND),
                    highlight=week,
                    bars=True,
                    fmt=signed,
                ),
            )
        )
    else:
        out.append(
            ChartBlock(
                "balance",
                "Balance index",
                None,
                "Scores missing: no balance index to chart yet."
                if status == "missing"
                else "No balance index this period (calibrating or no markers).",
            )
        )

    def against_usual(
        key: str, title: str, unit: str, series: list, band: tuple[float, float] | None
    ) -> ChartBlock:
        """A nightly series drawn against the person's usual range (their SWC band): RMSSD and
        resting HR read the same way, so they share one chart and one text alternative."""
        r = rng(series[week[0] :])
        alt = f"{title} for the last {CHART_NIGHTS} nights" + (
            f"; this week {r[0]:.0f}–{r[1]:.0f} {unit}" if r else "; none this week"
        )
        alt += f"; usual range {band[0]:.0f}–{band[1]:.0f} {unit}." if band else "; calibrating."
        chart = charts.series_chart(
            f"{title} ({unit}) with the usual range", alt, labels, series, band=band, highlight=week
        )
        return ChartBlock(
            key,
            title,
            chart if any(v is not None for v in series) else None,
            f"No {title[0].lower() + title[1:]} in the last 4 weeks.",
        )

    # RMSSD: the band is the SWC around the 60-night mean of ln RMSSD, back on the ms scale
    mu, swc = _last(n, "ln_rmssd_mu60"), _last(n, "ln_rmssd_swc")
    rm_band = (math.exp(mu - swc), math.exp(mu + swc)) if mu is not None and swc else None
    out.append(against_usual("rmssd", "Nightly RMSSD", "ms", vals("rmssd_ms"), rm_band))
    mu, swc = _last(n, "resting_hr_mu60"), _last(n, "resting_hr_swc")
    hr_band = (mu - swc, mu + swc) if mu is not None and swc is not None else None
    out.append(
        against_usual("resting_hr", "Resting heart rate", "bpm", vals("resting_hr"), hr_band)
    )
    # sleep duration
    tst = [v / 60 if v is not None else None for v in vals("tst_min")]
    r = rng(tst[week[0] :])
    short = sum(1 for v in tst[week[0] :] if v is not None and v < 7)
    alt = f"Sleep duration for the last {CHART_NIGHTS} nights" + (
        f"; this week {r[0]:.1f}–{r[1]:.1f} h, {short} night(s) under the 7 h line."
        if r
        else "; none this week."
    )
    out.append(
        ChartBlock(
            "sleep",
            "Sleep duration",
            charts.series_chart(
                "Sleep duration (h); dashed line 7 h",
                alt,
                labels,
                tst,
                ref_line=7.0,
                highlight=week,
                bars=True,
                fmt=lambda v: f"{v:.0f} h",
                low_is_bad=7.0,
            )
            if any(v is not None for v in tst)
            else None,
            "No sleep recorded in the last 4 weeks.",
        )
    )
    # bed and wake times this week
    wk_rows = {r["sleep_date"]: r for r in n.to_dicts()}
    wdays = [wk.monday + timedelta(days=i) for i in range(7)]
    spans = []
    for x in wdays:
        r = wk_rows.get(x, {})
        on, off = r.get("onset_h"), r.get("offset_h")
        spans.append((on, off) if on is not None and off is not None else None)
    desc = "; ".join(
        f"{x.strftime('%a')} {clock(s[0])}–{clock(s[1])}" if s else f"{x.strftime('%a')} none"
        for x, s in zip(wdays, spans, strict=True)
    )
    out.append(
        ChartBlock(
            "timing",
            "Bed and wake times",
            charts.timeline_chart(
                "Sleep onset to final awakening, each night of the week",
                f"Sleep times this week: {desc}.",
                [x.strftime("%a") for x in wdays],
                spans,
            )
            if any(spans)
            else None,
            "No sleep times this week.",
        )
    )
    return out


def _trends(d: PersonData, wk: IsoWeek) -> list[ChartBlock]:
    weeks = [wk.shift(-k) for k in range(TREND_WEEKS - 1, -1, -1)]
    rows = []
    for w in weeks:
        n, s = d.nights_in(w), d.scores_in(w)
        ln = _mean(_col(n, "ln_rmssd"))
        rows.append(
            (
                w,
                math.exp(ln) if ln is not None else None,
                _mean(_col(n, "resting_hr")),
                (lambda t: t / 60 if t is not None else None)(_mean(_col(n, "tst_min"))),
                _mean(_col(s, "balance_index")),
            )
        )
    while rows and all(v is None for v in rows[0][1:]):
        rows.pop(0)  # weeks before the person's first night
    labels = [f"W{r[0].week:02d}" for r in rows]
    out = []
    spec = (
        ("trend_rmssd", "RMSSD, weekly mean", 1, "ms", "{:.0f}"),
        ("trend_rhr", "Resting HR, weekly mean", 2, "bpm", "{:.0f}"),
        ("trend_sleep", "Sleep duration, weekly mean", 3, "h", "{:.1f}"),
        ("trend_balance", "Balance index, weekly mean", 4, "", "{:+.0f}"),  # shown via signed()
    )
    for key, heading, i, unit, f in spec:
        vs = [cast("float | None", r[i]) for r in rows]
        have = [(lab, v) for lab, v in zip(labels, vs, strict=True) if v is not None]
        if len(have) < 2:
            out.append(ChartBlock(key, heading, None, "Fewer than 2 weeks with data."))
            continue
        show = signed if key == "trend_balance" else f.format
        alt = f"{heading} over {len(have)} weeks: " + ", ".join(
            f"{lab} {show(v)}{' ' + unit if unit else ''}" for lab, v in have
        )
        out.append(
            ChartBlock(
                key,
                heading,
                charts.series_chart(heading, alt + ".", labels, vs, fmt=show),
            )
        )
    return out


def _coverage(d: PersonData, wk: IsoWeek) -> list[CoverageRow]:
    c = d.coverage.filter(pl.col("sleep_date").is_between(wk.monday, wk.sunday))
    rows = [
        CoverageRow(r["kind"], r["source"], r["n"])
        for r in c.group_by("kind", "source")
        .agg(pl.col("sleep_date").n_unique().alias("n"))
        .sort("kind", "source")
        .to_dicts()
    ]
    s = d.scores_in(wk)
    if s.height:
        rows.append(
            CoverageRow(
                "balance scores", "tunewell models", int(s["balance_index"].is_not_null().sum())
            )
        )
    return rows


def _backing(s: Suggestion, found: list[Insight]) -> tuple[str, ...]:
    outs = REGISTRY[s.rule_id].uses_insights
    adverse = {"ln_rmssd": -1, "balance_index": -1, "resting_hr": 1, "sleep_quality": -1}
    return tuple(
        i.text
        for i in found
        if i.outcome in outs and i.shown and math.copysign(1, i.diff) == adverse[i.outcome]
    )[:2]


def _sparks(d: PersonData, wk: IsoWeek) -> tuple[charts.Chart, charts.Chart, str, str]:
    end = wk.sunday
    days = [end - timedelta(days=CHART_NIGHTS - 1 - i) for i in range(CHART_NIGHTS)]
    by = {
        r["sleep_date"]: r
        for r in d.nights.filter(pl.col("sleep_date").is_between(days[0], end)).to_dicts()
    }
    rm = [by.get(x, {}).get("rmssd_ms") for x in days]
    ts = [by.get(x, {}).get("tst_min") for x in days]
    n = d.nights_in(wk)
    rmw, tsw = _mean(_col(n, "rmssd_ms")), _mean(_col(n, "tst_min"))
    rm_txt = f"{rmw:.0f} ms" if rmw is not None else "–"
    ts_txt = hm(tsw) if tsw is not None else "–"
    return (
        charts.sparkline(rm, "RMSSD, 28 nights", f"this week's mean {rm_txt}"),
        charts.sparkline(ts, "Sleep, 28 nights", f"this week's mean {ts_txt}"),
        rm_txt,
        ts_txt,
    )


def summarise(d: PersonData, wk: IsoWeek | None = None) -> PersonWeek:
    wk = wk or d.week
    status, note = _scores_status(d, wk)
    state, k, total = _state(d, wk)
    nights = int(d.nights_in(wk)["sleep_ok"].fill_null(False).sum())
    sugs = suggest(d, wk)
    found = insights(d)
    views = [SuggestionView(s, _backing(s, found)) for s in sugs]
    if nights == 0:
        head = "No nights recorded this week"
    elif state:
        head = f"Mostly {state} ({k} of {total} scored nights)"
    else:
        head = {
            "missing": "Balance scores missing",
            "calibrating": "Balance calibrating",
            "unmeasured": "No balance markers measured",
        }.get(status, "Balance not available")
    head += (
        "; nothing off this week"
        if not sugs
        else f"; {len(sugs)} thing{'s' if len(sugs) > 1 else ''} to look at"
    )
    spark_rm, spark_ts, rm_txt, ts_txt = _sparks(d, wk)
    return PersonWeek(
        user_id=d.user_id,
        week=wk,
        headline=head,
        state=state,
        state_class=STATE_CLASS.get(state or status, "none"),
        scores_status=status,
        scores_note=note,
        attention=_attention(sugs, nights),
        suggestions=views,
        keep_doing=None if sugs else keep_doing(d, wk),
        insights=[i for i in found if i.shown][:6],
        metrics=_metrics(d, wk, status),
        nights=_night_rows(d, wk),
        charts=_charts(d, wk, status),
        trends=_trends(d, wk),
        coverage=_coverage(d, wk),
        nights_with_data=nights,
        spark_rmssd=spark_rm,
        spark_sleep=spark_ts,
        rmssd_week=rm_txt,
        sleep_week=ts_txt,
        extra={"rules_version": RULES_VERSION},
    )
