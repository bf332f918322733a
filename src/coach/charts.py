"""Inline SVG charts with a text alternative, written by hand so a page needs nothing else.

Every chart is a ``Chart`` (the SVG markup plus the sentence that says what it shows): the SVG
carries it as ``<title>``/``<desc>`` for screen readers and the page prints it as the caption, so
the numbers are readable without seeing the picture. Charts scale to their container
(``viewBox``, width 100 %), which keeps pages free of horizontal scrolling on a phone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

W, H = 480, 190
PAD_L, PAD_R, PAD_T, PAD_B = 46, 8, 10, 26
INK = "#1f1f1f"
MUTED = "#595959"  # 7:1 on white
LINE = "#1f5fa8"
BAND = "#d6e4f5"
WEEK_BG = "#f4efdc"
LOW = "#a8461b"  # bars outside the usual range (5.6:1 on white)
BAR = "#2f6db0"


def _id(*parts: str) -> str:
    """Stable element ids, so re-running the weekly flow rewrites identical pages."""
    return "c" + hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Chart:
    svg: str
    alt: str


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _range(values: list[float], extra: tuple[float, ...] = ()) -> tuple[float, float]:
    vs = [v for v in (*values, *extra) if v is not None]
    if not vs:
        return 0.0, 1.0
    lo, hi = min(vs), max(vs)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    return lo - pad, hi + pad


def _frame(title: str, alt: str, body: list[str], height: int = H) -> Chart:
    n = _id(title, alt)
    tid, did = f"{n}t", f"{n}d"
    svg = (
        f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" '
        f'aria-labelledby="{tid} {did}" xmlns="http://www.w3.org/2000/svg" '
        'preserveAspectRatio="xMidYMid meet">'
        f'<title id="{tid}">{escape(title)}</title><desc id="{did}">{escape(alt)}</desc>'
        + "".join(body)
        + "</svg>"
    )
    return Chart(svg, alt)


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 13) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{MUTED}" '
        f'text-anchor="{anchor}">{escape(s)}</text>'
    )


def _axes(ys, y_lo: float, y_hi: float, fmt) -> list[str]:
    out = []
    for v in (y_lo, (y_lo + y_hi) / 2, y_hi):
        y = ys(v)
        out.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
        )
        out.append(_text(PAD_L - 4, y + 4, fmt(v), "end", 12))
    return out


def series_chart(
    title: str,
    alt: str,
    labels: list[str],
    values: list[float | None],
    *,
    band: tuple[float, float] | None = None,
    highlight: tuple[int, int] | None = None,
    ref_line: float | None = None,
    bars: bool = False,
    fmt=lambda v: f"{v:.0f}",
    low_is_bad: float | None = None,
) -> Chart:
    """Nightly values as a line (or bars) with an optional usual-range band and a shaded week."""
    n = max(len(values), 1)
    extra = tuple(x for x in (*(band or ()), ref_line) if x is not None)
    y_lo, y_hi = _range([v for v in values if v is not None], extra)
    if bars:
        y_lo = min(0.0, y_lo)
    xs = _scale(0, n, PAD_L, W - PAD_R)
    ys = _scale(y_lo, y_hi, H - PAD_B, PAD_T)
    step = (W - PAD_L - PAD_R) / n
    body = _axes(ys, y_lo, y_hi, fmt)
    if highlight:
        a, b = highlight
        body.append(
            f'<rect x="{xs(a):.1f}" y="{PAD_T}" width="{xs(b) - xs(a):.1f}" '
            f'height="{H - PAD_T - PAD_B}" fill="{WEEK_BG}"/>'
        )
    if band:
        body.append(
            f'<rect x="{PAD_L}" y="{ys(band[1]):.1f}" width="{W - PAD_L - PAD_R}" '
            f'height="{max(ys(band[0]) - ys(band[1]), 1):.1f}" fill="{BAND}" opacity="0.85"/>'
        )
    if ref_line is not None:
        y = ys(ref_line)
        body.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{MUTED}" '
            'stroke-dasharray="5 4"/>'
        )
    if bars:
        for i, v in enumerate(values):
            if v is None:
                continue
            bad = low_is_bad is not None and v < low_is_bad
            y0, y1 = ys(max(v, 0)), ys(min(v, 0))
            body.append(
                f'<rect x="{xs(i) + step * 0.15:.1f}" y="{y0:.1f}" width="{step * 0.7:.1f}" '
                f'height="{max(y1 - y0, 1):.1f}" fill="{LOW if bad else BAR}"/>'
            )
    else:
        pts = [(xs(i + 0.5), ys(v)) for i, v in enumerate(values) if v is not None]
        segs: list[list[tuple[float, float]]] = []
        cur: list[tuple[float, float]] = []
        for i, v in enumerate(values):
            if v is None:
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append((xs(i + 0.5), ys(v)))
        if cur:
            segs.append(cur)
        for s in segs:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in s)
            body.append(f'<polyline points="{d}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}"/>' for x, y in pts]
    every = max(1, n // 4)
    for i, lab in enumerate(labels):
        if i % every == 0 or i == n - 1:
            body.append(_text(xs(i + 0.5), H - 7, lab, size=12))
    return _frame(title, alt, body)


def timeline_chart(
    title: str, alt: str, labels: list[str], spans: list[tuple[float, float] | None]
) -> Chart:
    """Bed and wake times: one horizontal bar per night on a 20:00–12:00 clock axis."""
    lo, hi = 20.0, 36.0  # hours after midnight of the day before (36 = noon)
    for s in spans:
        if s:
            lo, hi = min(lo, s[0] - 0.5), max(hi, s[1] + 0.5)
    row = 22
    height = PAD_T + PAD_B + row * max(len(spans), 1)
    xs = _scale(lo, hi, PAD_L + 30, W - PAD_R)
    body = []
    h = int(lo) + (int(lo) % 2)
    while h <= hi:
        x = xs(h)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{height - PAD_B}" stroke="#e3e3e3"/>'
        )
        body.append(_text(x, height - 7, f"{h % 24:02d}", size=12))
        h += 2
    for i, (lab, s) in enumerate(zip(labels, spans, strict=True)):
        y = PAD_T + i * row
        body.append(_text(PAD_L + 24, y + 15, lab, "end", 12))
        if s:
            body.append(
                f'<rect x="{xs(s[0]):.1f}" y="{y + 4}" width="{xs(s[1]) - xs(s[0]):.1f}" '
                f'height="{row - 8}" rx="3" fill="{BAR}"/>'
            )
    return _frame(title, alt, body, height)


def sparkline(values: list[float | None], label: str, alt: str) -> Chart:
    """A small line for the roster: shape only, the number is printed next to it."""
    w, h = 120, 28
    vs = [v for v in values if v is not None]
    n = _id(label, alt)
    if len(vs) < 2:
        return Chart("", alt)
    lo, hi = min(vs), max(vs)
    xs = _scale(0, max(len(values) - 1, 1), 2, w - 2)
    ys = _scale(lo, hi if hi > lo else lo + 1, h - 3, 3)
    pts = " ".join(f"{xs(i):.1f},{ys(v):.1f}" for i, v in enumerate(values) if v is not None)
    svg = (
        f'<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-labelledby="{n}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{n}">{escape(label)}: {escape(alt)}</title>'
        f'<polyline points="{pts}" fill="none" stroke="{LINE}" stroke-width="1.6"/></svg>'
    )
    return Chart(svg, alt)
