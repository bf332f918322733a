"""What the demo's weekly pages say (3 synthetic people × 35 days, no scores yet), checked end to
end from the vendor files: which rules fire and why, the planted hard-day effect found as a
behaviour association, and no forbidden word in any page or stored summary."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from tests.coach.test_suggest import forbidden_words
from tunewell.lake import store
from tunewell.synth.people import HARD_DAY_LN

pytestmark = pytest.mark.slow


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = False

    def handle_starttag(self, tag, attrs):
        self._skip = tag in ("style",)

    def handle_endtag(self, tag):
        self._skip = False

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _text(html: str) -> str:
    t = _Text()
    t.feed(html)
    return " ".join(t.parts)


def test_no_forbidden_words_in_any_demo_output(demo_pages):
    settings, res = demo_pages
    files = sorted(res.folder.iterdir())
    assert len(files) == 2 + 2 * 3
    for f in files:
        body = f.read_text()
        text = _text(body) if f.suffix == ".html" else body
        assert not forbidden_words(text), (f.name, forbidden_words(text))
    rows = store.read(settings.lake, "weekly_summary")
    for r in rows.iter_rows(named=True):
        for col in ("summary_md", "suggestions", "insights", "headline"):
            assert not forbidden_words(r[col]), (r["user_id"], col)


def test_what_the_demo_pages_say(demo_pages):
    settings, res = demo_pages
    assert res.week == "2026-W15"  # the demo's last night (Mon 2026-04-13) starts W16
    rows = {r["user_id"]: r for r in store.read(settings.lake, "weekly_summary").to_dicts()}
    fired = {u: [s["rule_id"] for s in json.loads(r["suggestions"])] for u, r in rows.items()}
    # p001 (Garmin + Apple): weekend shifts push the wake-time SD over 60 min, 3 weeks running
    assert fired["p001"] == ["irregular_timing"]
    s = json.loads(rows["p001"]["suggestions"])[0]
    assert s["weeks_out_of_range"] == 3 and "qualified professional" in s["text"]
    # p002 (Apple: SDNN, no RMSSD) is not told to wear the watch more; p003 is steady
    assert fired["p002"] == [] and fired["p003"] == []
    assert all("Balance scores missing" in r["headline"] for r in rows.values())
    # the simulator's planted hard-day effect on next-night lnRMSSD shows as an association
    ins = [i for i in json.loads(rows["p001"]["insights"]) if i["outcome"] == "ln_rmssd"]
    hard = next(i for i in ins if i["tag"] == "hard_training_day")
    assert hard["ci_low"] < HARD_DAY_LN < hard["ci_high"] and hard["shown"]
    roster = res.roster.read_text()
    assert roster.index('href="p001.html"') < roster.index('href="p003.html"')
