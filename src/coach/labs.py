"""The "lab context" panel of a person's page: each marker's last results against the lab's band.

For the page that includes it::

    from tunewell.coach.labs import build_panel, render_html, render_markdown

    panel = build_panel(lake, user_id, as_of=week_end, priority=settings.source_priority)
    if not panel.is_empty:
        html_fragment = render_html(panel)      # a <section>, inline CSS and SVG, no network
        markdown = render_markdown(panel)       # the same content for the .md page

``build_panel`` reads ``lab_result`` (resolved across sources like every silver table) up to
``as_of``; ``panel_from_frame`` does the same from rows already in hand. What the panel says is
fixed by METRICS.md "Lab markers (context only)": the value as reported, dated, against the
range the lab printed beside it, in the lab's own wording (its range text and flag); a result
outside that range says "discuss with a qualified professional" and nothing more, and the
context-only disclaimer closes the panel. It never interprets, ranks or advises.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

import polars as pl

from tunewell.features.labs import LAST_N, cortisol_ratios, marker_history, marker_summary
from tunewell.lake import store
from tunewell.lake.merge import resolve
from tunewell.lake.paths import lake_path

DISCLAIMER = (
    "Lab results are shown for context only, as the lab reported them and against the lab's "
    "own reference range. They are not used in any score on this page and are not a "
    "diagnosis; questions about a result belong with a qualified professional."
)
OUT_OF_RANGE_NOTE = "discuss with a qualified professional"
ANCHOR = "lab-context-note"


class Position(StrEnum):
    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"
    NO_RANGE = "no_range"
    NOT_NUMERIC = "not_numeric"


def _num(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class LabReading:
    """One result as the lab reported it."""

    day: date  # local date of collection
    collected_utc: datetime
    value: float | None
    value_text: str | None
    unit: str | None
    reference_low: float | None
    reference_high: float | None
    reference_text: str | None
    interpretation: str | None
    position: Position
    out_of_range: bool
    source_document: str | None

    @property
    def shown(self) -> str:
        """The result in the lab's terms: ``38 ng/mL``, ``<0.5 mg/L``, ``negative``."""
        body = _num(self.value) if self.value is not None else (self.value_text or "")
        return f"{body} {self.unit}".strip() if self.unit else body

    @property
    def range_shown(self) -> str:
        """The lab's own range wording where it gave one, else its bounds."""
        if self.reference_text:
            return self.reference_text
        lo, hi, unit = self.reference_low, self.reference_high, self.unit or ""
        if lo is not None and hi is not None:
            return f"{_num(lo)}–{_num(hi)} {unit}".strip()
        if lo is not None:
            return f"≥ {_num(lo)} {unit}".strip()
        if hi is not None:
            return f"≤ {_num(hi)} {unit}".strip()
        return "no range given"


@dataclass(frozen=True)
class LabMarker:
    """A marker's last results (oldest first) and the summary features of ``features.labs``."""

    key: str
    name: str
    code: str | None
    code_system: str | None
    specimen: str | None
    readings: tuple[LabReading, ...]
    n_results: int
    trend: str  # rising | falling | unchanged | single | diurnal

    @property
    def latest(self) -> LabReading:
        return self.readings[-1]

    @property
    def out_of_range(self) -> bool:
        return self.latest.out_of_range

    @property
    def label(self) -> str:
        if not self.specimen or self.specimen in self.name.lower():
            return self.name
        return f"{self.name} ({self.specimen})"


@dataclass(frozen=True)
class CortisolRatio:
    waking_day: date
    waking_value: float
    bedtime_value: float
    unit: str | None
    ratio: float


@dataclass(frozen=True)
class LabPanel:
    user_id: str
    as_of: date
    markers: tuple[LabMarker, ...]
    cortisol_ratios: tuple[CortisolRatio, ...]
    disclaimer: str = DISCLAIMER

    @property
    def is_empty(self) -> bool:
        return not self.markers


# ------------------------------------------------------------------------------ building


def build_panel(
    lake: Path,
    user_id: str,
    as_of: date,
    *,
    priority: Sequence[str] = (),
    last_n: int = LAST_N,
) -> LabPanel:
    """The panel of one person from the lake, with results up to ``as_of`` (local date)."""
    lf = store.scan(lake_path(lake), "lab_result", [user_id])
    rows = resolve("lab_result", lf, priority).collect()
    return panel_from_frame(rows, user_id, as_of, last_n=last_n)


def panel_from_frame(
    lab: pl.DataFrame, user_id: str, as_of: date, *, last_n: int = LAST_N
) -> LabPanel:
    lab = lab.filter(pl.col("user_id") == user_id)
    if lab.is_empty():
        return LabPanel(user_id, as_of, (), ())
    summary = marker_summary(lab, as_of, last_n)
    history = marker_history(lab, as_of, last_n)
    markers = []
    for s in summary.iter_rows(named=True):
        rows = history.filter(pl.col("marker") == s["marker"])
        readings = tuple(
            LabReading(
                day=r["local_date"],
                collected_utc=r["collected_utc"] or r["start_utc"],
                value=r["value"],
                value_text=r["value_text"],
                unit=r["unit"],
                reference_low=r["reference_low"],
                reference_high=r["reference_high"],
                reference_text=r["reference_text"],
                interpretation=r["interpretation"],
                position=Position(r["position"]),
                out_of_range=bool(r["out_of_range"]),
                source_document=r["source_document"],
            )
            for r in rows.iter_rows(named=True)
        )
        markers.append(
            LabMarker(
                key=s["marker"],
                name=s["name"] or s["code"] or s["marker"],
                code=s["code"],
                code_system=s["code_system"],
                specimen=s["specimen"],
                readings=readings,
                n_results=s["n_results"],
                trend=s["trend"],
            )
        )
    ratios = tuple(
        CortisolRatio(
            r["waking_date"],
            r["waking_value"],
            r["bedtime_value"],
            r["unit"],
            r["waking_bedtime_ratio"],
        )
        for r in cortisol_ratios(lab, as_of).iter_rows(named=True)
    )
    return LabPanel(user_id, as_of, tuple(markers), ratios)


# ------------------------------------------------------------------------------ text


def alt_text(m: LabMarker) -> str:
    """What the band chart shows, in words (the chart's text alternative)."""
    parts = [
        f"{r.day.isoformat()}: {r.shown}" + (" (outside the lab's range)" if r.out_of_range else "")
        for r in m.readings
    ]
    return f"{m.label}, lab's range {m.latest.range_shown}; " + "; ".join(parts)


def _earlier(m: LabMarker) -> str:
    return "; ".join(f"{r.day.isoformat()}: {r.shown}" for r in reversed(m.readings[:-1]))


def render_markdown(panel: LabPanel) -> str:
    lines = ["## Lab context", ""]
    if panel.is_empty:
        lines += ["No lab results up to " + panel.as_of.isoformat() + ".", "", panel.disclaimer]
        return "\n".join(lines) + "\n"
    lines += [
        "| marker | date | result | lab's range | lab's flag | earlier results | note |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(s: str | None) -> str:
        return (s or "").replace("|", "\\|").replace("\n", " ")

    for m in panel.markers:
        r = m.latest
        note = f"outside the lab's range: {OUT_OF_RANGE_NOTE}" if m.out_of_range else ""
        lines.append(
            "| "
            + " | ".join(
                cell(x)
                for x in (
                    m.label,
                    r.day.isoformat(),
                    r.shown,
                    r.range_shown,
                    r.interpretation,
                    _earlier(m),
                    note,
                )
            )
            + " |"
        )
    if panel.cortisol_ratios:
        lines += ["", "Saliva cortisol, waking ÷ bedtime sample:"]
        for c in panel.cortisol_ratios:
            lines.append(
                f"- {c.waking_day.isoformat()}: {_num(c.ratio)} "
                f"({_num(c.waking_value)} ÷ {_num(c.bedtime_value)} {c.unit or ''})".rstrip()
            )
    lines += ["", f"_{panel.disclaimer}_"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ HTML

_W, _H, _PAD = 180, 40, 6
_CSS = """
.lab-context{font:14px/1.4 system-ui,sans-serif;color:#222}
.lab-context table{border-collapse:collapse;width:100%}
.lab-context th,.lab-context td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;
vertical-align:middle}
.lab-context time{white-space:nowrap}
.lab-context .band{fill:#dfe9df}.lab-context .pt{fill:#456}.lab-context .pt.last{fill:#123}
.lab-context .pt.out{fill:#fff;stroke:#123;stroke-width:1.5}
.lab-context .note{font-size:12px;color:#555}
.lab-context svg.band-chart{max-width:100%;height:auto}
@media (max-width:40rem){
.lab-context thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.lab-context tr{display:block;border-bottom:2px solid #c8c8c8;padding:4px 0}
.lab-context td{display:flex;justify-content:space-between;gap:1rem;border:0;padding:2px 0;
text-align:right;overflow-wrap:anywhere}
.lab-context td::before{content:attr(data-label);font-weight:600;flex:0 0 auto;text-align:left}
.lab-context td:empty{display:none}
}
"""


def band_svg(m: LabMarker) -> str:
    """A small chart: the lab's range as a band, the last results as dots in time order."""
    values = [r.value for r in m.readings if r.value is not None]
    label = html.escape(alt_text(m))
    if not values:
        return ""  # text results: the row and its earlier results say it all
    lo, hi = m.latest.reference_low, m.latest.reference_high
    span = [*values, *(x for x in (lo, hi) if x is not None)]
    vmin, vmax = min(span), max(span)
    pad = (vmax - vmin) * 0.15 or abs(vmax) * 0.15 or 1.0
    vmin, vmax = vmin - pad, vmax + pad

    def y(v: float) -> float:
        return _PAD + (vmax - v) / (vmax - vmin) * (_H - 2 * _PAD)

    parts = [
        f'<svg class="band-chart" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
    ]
    if lo is not None or hi is not None:
        top = y(hi) if hi is not None else 0.0
        bottom = y(lo) if lo is not None else float(_H)
        parts.append(
            f'<rect class="band" x="0" y="{top:.1f}" width="{_W}" height="{bottom - top:.1f}"/>'
        )
    numeric = [r for r in m.readings if r.value is not None]
    step = (_W - 2 * _PAD) / max(len(numeric) - 1, 1)
    for i, r in enumerate(numeric):
        x = _PAD + i * step if len(numeric) > 1 else _W / 2
        cls = "pt" + (" last" if r is numeric[-1] else "") + (" out" if r.out_of_range else "")
        rad = 4 if r is numeric[-1] else 3
        assert r.value is not None
        parts.append(f'<circle class="{cls}" cx="{x:.1f}" cy="{y(r.value):.1f}" r="{rad}"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(panel: LabPanel, *, standalone: bool = False) -> str:
    """The panel as an HTML ``<section>`` (``standalone``: a whole page around it)."""
    e = html.escape
    out = [f"<section class='lab-context' aria-labelledby='lab-context-h'><style>{_CSS}</style>"]
    out.append("<h2 id='lab-context-h'>Lab context</h2>")
    if panel.is_empty:
        out.append(f"<p>No lab results up to {panel.as_of.isoformat()}.</p>")
    else:
        out.append(
            "<table><thead><tr><th>marker</th><th>date</th><th>result</th><th>lab's range</th>"
            "<th>lab's flag</th><th>last results</th><th>note</th></tr></thead><tbody>"
        )
        for m in panel.markers:
            r = m.latest
            note = (
                f"outside the lab's range: <a href='#{ANCHOR}'>{OUT_OF_RANGE_NOTE}</a>"
                if m.out_of_range
                else ""
            )
            earlier = _earlier(m)
            # data-label: on a phone each row becomes a stack of "column: value" lines
            out.append(
                "<tr>"
                f"<td data-label='marker'>{e(m.label)}</td><td data-label='date'>"
                f"<time datetime='{r.day.isoformat()}'>{r.day.isoformat()}</time></td>"
                f"<td data-label='result'>{e(r.shown)}</td>"
                f'<td data-label="lab\'s range">{e(r.range_shown)}</td>'
                f'<td data-label="lab\'s flag">{e(r.interpretation or "")}</td>'
                f"<td data-label='last results'>{band_svg(m)}"
                + (f"<div class='note'>earlier: {e(earlier)}</div>" if earlier else "")
                + f"</td><td class='note'>{note}</td></tr>"
            )
        out.append("</tbody></table>")
        if panel.cortisol_ratios:
            out.append("<p>Saliva cortisol, waking ÷ bedtime sample:</p><ul>")
            for c in panel.cortisol_ratios:
                out.append(
                    f"<li>{c.waking_day.isoformat()}: {_num(c.ratio)} ({_num(c.waking_value)} "
                    f"÷ {_num(c.bedtime_value)} {e(c.unit or '')})</li>"
                )
            out.append("</ul>")
    out.append(f"<p class='note' id='{ANCHOR}'>{e(panel.disclaimer)}</p></section>")
    body = "".join(out)
    if not standalone:
        return body
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Lab context – {e(panel.user_id)}</title></head><body>{body}</body></html>"
    )


__all__ = [
    "DISCLAIMER",
    "OUT_OF_RANGE_NOTE",
    "CortisolRatio",
    "LabMarker",
    "LabPanel",
    "LabReading",
    "Position",
    "alt_text",
    "band_svg",
    "build_panel",
    "panel_from_frame",
    "render_html",
    "render_markdown",
]
