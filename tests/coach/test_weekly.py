"""The weekly run on a lake: weekly_summary rows, pages on disk, coach rosters, re-runs, and a
lake without scores (the demo before the models land)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.coach.gold import (
    WEEK,
    steady_load,
    steady_nights,
    steady_person,
    steady_scores,
)
from tests.coach.test_suggest import FIRES
from tunewell.coach import weekly
from tunewell.coach.week import IsoWeek, default_week, load_person
from tunewell.lake import store
from tunewell.settings import CoachSettings, Settings


def _lake(lake: Path, with_scores: bool = True) -> None:
    short = FIRES["short_sleep_need"]
    for user in ("calm", "short", "bare"):
        nights, load, scores = steady_nights(user), steady_load(user), steady_scores(user)
        if user == "short":
            d = short(steady_person(user))
            nights = d.nights
        store.upsert(lake, "nightly_features", nights)
        store.upsert(lake, "daily_load", load)
        if with_scores and user != "bare":
            store.upsert(lake, "scores", scores)


@pytest.fixture
def coached(tmp_path: Path) -> Settings:
    lake = store.init_lake(tmp_path / "lake")
    _lake(lake)
    return Settings(
        lake=lake,
        coaches={
            "ann": CoachSettings(name="Ann", people=("short", "calm")),
            "bo": CoachSettings(people=("bare",)),
        },
    )


def test_weekly_writes_rows_and_pages_and_reruns_replace_them(coached: Settings):
    res = weekly.run_weekly(coached, str(WEEK))
    folder = coached.lake / "reports" / "weekly" / "2026-W15"
    assert res.folder == folder and res.roster == folder / "index.html"
    for u in ("calm", "short", "bare"):
        for ext in ("html", "md"):
            f = folder / f"{u}.{ext}"
            assert f.exists()
            assert stat.S_IMODE(f.stat().st_mode) == 0o600
    rows = store.read(coached.lake, "weekly_summary").sort("user_id")
    assert rows["user_id"].to_list() == ["bare", "calm", "short"]
    assert set(rows["week"]) == {"2026-W15"} and set(rows["week_start"]) == {WEEK.monday}
    short = rows.filter(user_id="short").row(0, named=True)
    sugs = json.loads(short["suggestions"])
    assert sugs[0]["rule_id"] == "short_sleep_need"
    for k in ("rule_id", "metric", "value", "reference", "source", "text"):
        assert sugs[0][k] not in (None, "")
    assert "Not medical advice" in short["summary_md"]
    assert json.loads(rows.filter(user_id="calm")["suggestions"][0]) == []
    bare = rows.filter(user_id="bare").row(0, named=True)
    assert "Balance scores missing" in bare["headline"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    weekly.run_weekly(coached, str(WEEK))
    assert store.read(coached.lake, "weekly_summary").height == 3
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_coach_rosters_hold_their_people_in_attention_order(coached: Settings):
    res = weekly.run_weekly(coached, str(WEEK))
    assert set(res.coach_rosters) == {"ann", "bo"}
    ann = res.coach_rosters["ann"].read_text()
    assert ann.index('href="short.html"') < ann.index('href="calm.html"')
    assert 'href="bare.html"' not in ann
    assert "Coach bo" in res.coach_rosters["bo"].read_text()
    index = res.roster.read_text()
    assert 'href="coach-ann.html"' in index and 'href="bare.html"' in index
    assert (res.folder / "coach-ann.md").exists()


def test_a_lake_without_scores_still_gets_pages(tmp_path: Path):
    lake = store.init_lake(tmp_path / "lake")
    _lake(lake, with_scores=False)
    res = weekly.run_weekly(Settings(lake=lake))
    assert res.week == "2026-W15"  # the latest complete week
    page = res.people["calm"].read_text()
    assert "scores are missing" in page and "Nightly RMSSD" in page


def test_an_empty_lake_writes_an_empty_roster(tmp_path: Path):
    lake = store.init_lake(tmp_path / "lake")
    res = weekly.run_weekly(Settings(lake=lake), "2026-W15")
    assert "Nobody on this roster" in res.roster.read_text()
    assert store.read(lake, "weekly_summary").height == 0


def test_iso_weeks():
    assert str(IsoWeek.parse("2026-W01")) == "2026-W01"
    assert IsoWeek.parse("2026-W15").monday.isoformat() == "2026-04-06"
    assert IsoWeek.parse("2021-W01").shift(-1) == IsoWeek(2020, 53)
    for bad in ("2026-15", "2026-W60", "2025-W53", "W15"):
        with pytest.raises(ValueError):
            IsoWeek.parse(bad)


def test_default_week_is_the_latest_complete_one(tmp_path: Path):
    lake = store.init_lake(tmp_path / "lake")
    store.upsert(lake, "nightly_features", steady_nights("u", end=WEEK.sunday, n=20))
    assert default_week(lake) == WEEK
    store.upsert(lake, "nightly_features", steady_nights("u", end=WEEK.shift(1).monday, n=21))
    assert default_week(lake) == WEEK  # one night of W16 is not a week yet


def test_load_person_reads_the_week_and_its_history(coached: Settings):
    d = load_person(coached.lake, "calm", WEEK)
    assert d.nights["sleep_date"].max() == WEEK.sunday
    assert d.nights_in(WEEK).height == 7 and d.has_scores


def test_no_lab_results_means_no_lab_panel(coached: Settings):
    from tunewell.coach.report import lab_provider

    assert lab_provider()(coached.lake, "calm", WEEK) is None
    res = weekly.run_weekly(coached, str(WEEK))
    assert "Lab context" not in res.people["calm"].read_text()
