"""The demo's roster and a person page in headless Chromium (Debian's package, driven by
Playwright): charts and suggestions are there, nothing is fetched from a network, nothing is
logged as an error, and a 375 px phone needs no horizontal scrolling. Screenshots are saved.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("TUNEWELL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: $TUNEWELL_SCREENSHOTS (e.g. to refresh docs/img), else a tmp dir."""
    env = os.environ.get("TUNEWELL_SCREENSHOTS")
    out = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    sync = pytest.importorskip("playwright.sync_api")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    seen: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    others = [u for u in seen if u != path.as_uri()]
    return page, others, errors


@pytest.mark.parametrize("width", [375, 1000])
def test_roster_and_person_pages_in_chromium(browser, demo_pages, shots, width):
    _, res = demo_pages
    roster, others, errors = _open(browser, res.roster, width)
    assert others == [] and errors == []
    cards = roster.locator("li.card")
    assert cards.count() == 3
    assert roster.locator("svg.spark").count() >= 4
    assert roster.evaluate("document.documentElement.scrollWidth") <= roster.evaluate(
        "window.innerWidth"
    )
    roster.screenshot(path=str(shots / f"roster-{width}.png"), full_page=True)
    # the first card is who needs attention most; follow its link like a coach would
    first = cards.first.get_attribute("data-user")
    with roster.expect_navigation():
        cards.first.locator("h2 a").click()
    assert roster.url.endswith(f"/{first}.html")
    roster.close()

    for user in res.people:
        page, others, errors = _open(browser, res.people[user], width)
        assert others == [] and errors == [], (others, errors)
        charts = page.locator("svg.chart")
        assert charts.count() >= 5  # p002 (Apple) has no RMSSD chart
        for i in range(charts.count()):
            c = charts.nth(i)
            assert c.get_attribute("role") == "img"
            assert c.locator("title").count() == 1 and c.locator("desc").count() == 1
            box = c.bounding_box()
            assert box and box["width"] > 100 and box["x"] + box["width"] <= width + 0.5
        sugg = page.locator("#suggestions article.suggestion, #suggestions .keep-doing")
        assert sugg.count() >= 1
        assert page.locator("p.disclaimer").inner_text().startswith("Not medical advice")
        assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate(
            "window.innerWidth"
        )
        page.screenshot(path=str(shots / f"{user}-{width}.png"), full_page=True)
        assert (shots / f"{user}-{width}.png").stat().st_size > 10_000
        page.close()
    # the demo has a suggestion somewhere (p001's irregular timing, p002's missing nights)
    texts = [p.read_text() for p in res.people.values()]
    assert any('<article class="suggestion"' in t for t in texts)


def test_print_layout_fits_a4(browser, demo_pages):
    _, res = demo_pages
    page, others, errors = _open(browser, next(iter(res.people.values())), 794)
    page.emulate_media(media="print")
    assert page.locator("nav").evaluate("e => getComputedStyle(e).display") == "none"
    assert page.evaluate("document.documentElement.scrollWidth") <= 794
    pdf = page.pdf(format="A4")
    assert pdf[:4] == b"%PDF" and others == [] and errors == []
    page.close()


@pytest.fixture(scope="module")
def page_with_labs(demo_pages, tmp_path_factory):
    """p001's page of the demo week with a lab panel: the demo lake copied, a lab sheet with an
    out-of-range result, a text result and saliva cortisol ingested for p001, pages rebuilt."""
    import dataclasses
    from datetime import timedelta

    from tunewell.coach.weekly import resolve_week, run_weekly
    from tunewell.ingest.runner import ingest_paths
    from tunewell.synth import labs as synth_labs

    settings, _ = demo_pages
    root = tmp_path_factory.mktemp("with_labs")
    shutil.copytree(settings.lake, root / "lake")
    ours = dataclasses.replace(settings, lake=root / "lake")
    week = resolve_week(ours, None)
    sheet = synth_labs.write_lab_csv(root / "labs.csv", week.monday - timedelta(days=10))
    rep = ingest_paths([sheet], "p001", ours)
    assert [f.status for f in rep.files] == ["ingested"], [f.error for f in rep.files]
    return run_weekly(ours, str(week)).people["p001"]


def test_lab_panel_fits_a_phone(browser, page_with_labs):
    page, others, errors = _open(browser, page_with_labs, 375)
    assert others == [] and errors == []
    panel = page.locator("#lab-context section.lab-context")
    assert panel.count() == 1
    assert panel.locator("tbody tr").count() >= 3
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = panel.bounding_box()
    assert box and box["x"] + box["width"] <= 375.5
    # the stacked rows still say which column a value belongs to
    assert panel.locator("td[data-label='result']").count() >= 3
    page.close()
