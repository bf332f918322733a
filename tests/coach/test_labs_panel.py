"""The lab context panel: typed builder from the lake, HTML and Markdown renderers."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tunewell.coach.labs import (
    DISCLAIMER,
    OUT_OF_RANGE_NOTE,
    LabPanel,
    Position,
    build_panel,
    render_html,
    render_markdown,
)
from tunewell.ingest.runner import ingest_paths
from tunewell.synth import labs as synth_labs

DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"
FORBIDDEN = re.compile(
    r"diagnos\w*|\bdos(e|es|ed|ing|age)\b|supplement\w*|medicat\w*|prescri\w*|\bdrugs?\b",
    re.IGNORECASE,
)


@pytest.fixture
def lake_with_labs(settings, tmp_path):
    csv = synth_labs.write_lab_csv(tmp_path / "labs.csv", date(2026, 3, 2))
    older = tmp_path / "older.csv"
    older.write_text(
        "date,code,name,value,unit,low,high\n"
        "2025-09-01,2276-4,Ferritin,22,ng/mL,30,400\n"
        "2025-12-01,2276-4,Ferritin,30,ng/mL,30,400\n"
    )
    rep = ingest_paths([csv, older, DATA / "bundle-portal.json"], "u1", settings)
    assert all(f.status == "ingested" for f in rep.files), [f.error for f in rep.files]
    return settings


def test_panel_is_typed_and_dated(lake_with_labs):
    s = lake_with_labs
    panel = build_panel(s.lake, "u1", date(2026, 3, 31), priority=s.source_priority)
    assert isinstance(panel, LabPanel) and not panel.is_empty
    by = {m.name: m for m in panel.markers}
    # the portal's ferritin (Feb 3) and the CSV's (Mar 2, Sep 1, Dec 1) are one marker
    ferritin = by["Ferritin"]
    assert [r.day for r in ferritin.readings] == [
        date(2025, 9, 1),
        date(2025, 12, 1),
        date(2026, 2, 3),
        date(2026, 3, 2),
    ]
    assert ferritin.latest.shown == "38 ng/mL"
    assert ferritin.latest.range_shown == "30–400 ng/mL"
    assert [r.position for r in ferritin.readings] == [
        Position.BELOW,
        Position.WITHIN,
        Position.BELOW,
        Position.WITHIN,
    ]
    assert not ferritin.out_of_range and ferritin.trend == "rising"
    assert by["TSH"].out_of_range and by["TSH"].latest.interpretation == "H"
    assert by["HbA1c"].latest.range_shown == "<5.7 %"  # the lab's own wording
    assert by["CRP"].latest.shown == "<0.5 mg/L"
    assert [c.ratio for c in panel.cortisol_ratios] == [pytest.approx(14.6 / 3.1)]
    # as of an earlier date, later results are not on the page
    early = build_panel(s.lake, "u1", date(2026, 1, 1))
    assert {m.name for m in early.markers} == {"Ferritin"}
    assert early.markers[0].latest.day == date(2025, 12, 1)


def test_markdown(lake_with_labs):
    md = render_markdown(build_panel(lake_with_labs.lake, "u1", date(2026, 3, 31)))
    assert md.startswith("## Lab context")
    tsh = next(line for line in md.splitlines() if line.startswith("| TSH"))
    assert "2026-03-02" in tsh and "4.9 m[IU]/L" in tsh and "0.4–4 m[IU]/L" in tsh
    assert f"outside the lab's range: {OUT_OF_RANGE_NOTE}" in tsh
    ferritin = next(line for line in md.splitlines() if line.startswith("| Ferritin"))
    assert OUT_OF_RANGE_NOTE not in ferritin
    assert "2026-02-03: 18 ng/mL" in ferritin  # earlier results, newest first
    assert DISCLAIMER in md
    assert "waking ÷ bedtime" in md


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_with_text_alternatives(lake_with_labs):
    panel = build_panel(lake_with_labs.lake, "u1", date(2026, 3, 31))
    page = render_html(panel, standalone=True)
    p = _Collect()
    p.feed(page)
    # nothing is fetched: no scripts, no external sources or stylesheets
    assert not [t for t, a in p.tags if t in ("script", "img", "link", "iframe")]
    assert not re.search(r"(src|href)\s*=\s*['\"](https?:)?//", page)
    svgs = [a for t, a in p.tags if t == "svg"]
    numeric = [m for m in panel.markers if any(r.value is not None for r in m.readings)]
    assert len(svgs) == len(numeric) > 0
    assert all(a.get("role") == "img" and a.get("aria-label") for a in svgs)
    ferritin_alt = next(a["aria-label"] for a in svgs if a["aria-label"].startswith("Ferritin"))
    assert "2026-03-02: 38 ng/mL" in ferritin_alt and "30–400 ng/mL" in ferritin_alt
    links = [a["href"] for t, a in p.tags if t == "a"]
    assert links and set(links) == {"#lab-context-note"}
    assert DISCLAIMER.replace("'", "&#x27;") in page


def test_no_forbidden_wording_beyond_the_disclaimer(lake_with_labs, tmp_path, settings):
    clinical = synth_labs.apple_clinical_records(date(2026, 1, 6))
    for name, data in clinical.members.items():
        (tmp_path / Path(name).name).write_bytes(data)
    ingest_paths([tmp_path], "u1", settings)
    panel = build_panel(settings.lake, "u1", date(2026, 3, 31))
    assert len(panel.markers) >= 10
    assert any(m.out_of_range for m in panel.markers)
    for text in (render_markdown(panel), render_html(panel, standalone=True)):
        assert DISCLAIMER.split(";")[0][:40] in text.replace("&#x27;", "'")
        rest = text.replace("&#x27;", "'").replace(DISCLAIMER, "")
        assert not FORBIDDEN.search(rest), FORBIDDEN.search(rest)
        # the out-of-range wording is the one sentence and nothing more
        assert rest.count(OUT_OF_RANGE_NOTE) == sum(m.out_of_range for m in panel.markers)
    assert FORBIDDEN.search(DISCLAIMER)  # the test can fail: the disclaimer itself would


def test_empty_panel(settings):
    panel = build_panel(settings.lake, "nobody", date(2026, 3, 31))
    assert panel.is_empty
    assert "No lab results" in render_markdown(panel)
    assert "No lab results" in render_html(panel)
