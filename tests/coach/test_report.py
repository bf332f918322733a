"""Person and roster pages from constructed weeks: evidence shown, self-contained, accessible
structure, the disclaimer everywhere, no forbidden words, the lab slot, missing scores."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from tests.coach.gold import WEEK, steady_person
from tests.coach.test_suggest import FIRES, forbidden_words
from tunewell.coach.report import LabSlot, attention_order, render_person, render_roster
from tunewell.coach.suggest import DISCLAIMER
from tunewell.coach.summary import summarise


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings: list[int] = []
        self.text: list[str] = []
        self.svgs = 0
        self.svg_titles = 0
        self.svg_descs = 0
        self.fetching: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.svgs += 1
        if tag == "title" and self.svgs:
            self.svg_titles += 1
        if tag == "desc":
            self.svg_descs += 1
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.fetching.append(tag)
        if any(k in a for k in ("src", "srcset")) or (a.get("href") or "").startswith("http"):
            self.fetching.append(f"{tag}:{a}")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if not self._in_style:
            self.text.append(data)


def parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


def all_persons():
    out = [steady_person(), steady_person(scores=False)]
    out += [f(steady_person()) for f in FIRES.values()]
    return out


def test_person_page_shows_each_suggestion_with_its_evidence():
    d = FIRES["short_sleep_need"](steady_person())
    p = summarise(d)
    html, md = render_person(p)
    s = p.suggestions[0].s
    assert s.rule_id == "short_sleep_need"
    for part in (s.value_text, s.reference, s.source, s.threshold):
        assert part in html
    for part in (s.value_text, s.reference, s.source):
        assert part in md
    assert 'data-rule="short_sleep_need"' in html


@pytest.mark.parametrize("i", range(len(FIRES) + 2))
def test_pages_are_self_contained_ordered_and_carry_the_disclaimer(i):
    p = summarise(all_persons()[i])
    html, md = render_person(p)
    page = parse(html)
    assert page.fetching == []
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(page.headings, page.headings[1:], strict=False))
    assert page.svgs >= 4 and page.svg_titles >= page.svgs and page.svg_descs >= page.svgs
    assert DISCLAIMER in html and DISCLAIMER in md
    text = " ".join(page.text)
    assert not forbidden_words(text), forbidden_words(text)
    assert not forbidden_words(md), forbidden_words(md)


def test_missing_scores_say_so_and_still_show_features():
    p = summarise(steady_person(scores=False))
    html, md = render_person(p)
    assert p.scores_status == "missing"
    assert "scores are missing" in html and "scores are missing" in md
    assert "55 ms" in html  # RMSSD still shown
    assert "Balance scores missing" in p.headline


def test_calibrating_scores_are_named():
    d = steady_person()
    d = replace(d, scores=d.scores.with_columns(balance_state=pl.lit("calibrating")))
    p = summarise(d)
    assert p.scores_status == "calibrating" and "calibrating" in p.scores_note


def test_lab_slot_renders_only_when_given():
    p = summarise(steady_person())
    html, md = render_person(p)
    assert 'id="lab-context"' not in html and "Lab context" not in md
    lab = LabSlot(
        "<section><h2>Lab context</h2><p>Ferritin 40 µg/L (lab range 30–300)</p></section>",
        "## Lab context\n\nFerritin 40 µg/L",
    )
    html, md = render_person(p, lab=lab)
    assert 'id="lab-context"' in html and "Ferritin 40" in html
    assert html.count("Lab context") == 1
    assert md.count("## Lab context") == 1 and "Ferritin 40" in md


def test_roster_sorts_by_attention_and_links_people():
    calm = summarise(steady_person("calm"))
    busy = summarise(
        FIRES["load_spike_low_balance"](FIRES["short_sleep_need"](steady_person("busy")))
    )
    thin = summarise(FIRES["irregular_timing"](steady_person("thin")))
    order = [p.user_id for p in attention_order([calm, thin, busy])]
    assert order == ["busy", "thin", "calm"]
    html, md = render_roster("Roster", WEEK, [calm, thin, busy])
    assert (
        html.index('href="busy.html"')
        < html.index('href="thin.html"')
        < html.index('href="calm.html"')
    )
    assert md.index("## busy") < md.index("## calm")
    assert DISCLAIMER in html and DISCLAIMER in md
    page = parse(html)
    assert page.fetching == [] and page.headings[0] == 1
    assert html.count('class="spark"') == 6
    assert not forbidden_words(" ".join(page.text)) and not forbidden_words(md)


def _lum(hex_: str) -> float:
    h = hex_.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    rgb = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_lum(a), _lum(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_meet_aa_contrast():
    css = (Path(__file__).parents[2] / "src/coach/templates/_base.html.j2").read_text()
    rules = re.findall(r"([^{}]+)\{([^{}]*)\}", css)
    checked = 0
    for _, body in rules:
        fg = re.search(r"(?<![-\w])color:(#[0-9a-fA-F]{3,6})", body)
        bg = re.search(r"background:(#[0-9a-fA-F]{3,6})", body)
        if fg:
            assert contrast(fg.group(1), bg.group(1) if bg else "#fff") >= 4.5, body
            checked += 1
    assert checked >= 6
    from tunewell.coach import charts

    for c in (charts.MUTED, charts.INK):  # chart text on white
        assert contrast(c, "#fff") >= 4.5
    for c in (charts.LINE, charts.BAR, charts.LOW):  # graphics: 3:1
        assert contrast(c, "#fff") >= 3 and contrast(c, charts.BAND) >= 3
