"""The nightly path written once (``steps.run_nightly``), run without Prefect: which steps run,
in which order, what is mapped per file and per user, and what `--no-features` leaves owed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tunewell.coach.week import HISTORY_DAYS, IsoWeek
from tunewell.ingest import runner
from tunewell.lake import manifest, store
from tunewell.pipelines import steps
from tunewell.settings import Settings
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import simulate

pytestmark = pytest.mark.slow


class Recording(steps.InProcess):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    def call(self, step, *args):
        self.calls.append(("call", step.__name__, 1))
        return super().call(step, *args)

    def map(self, step, items, *args):
        self.calls.append(("map", step.__name__, len(items)))
        return super().map(step, items, *args)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    users = write_inbox(simulate(2, 8, seed=5), root / "inbox", formats=("garmin_fit",))
    return root, users


@pytest.fixture(scope="module")
def ran(inbox, tmp_path_factory):
    root, users = inbox
    lake = tmp_path_factory.mktemp("steps_lake") / "lake"
    s = Settings(lake=lake, inbox=root / "inbox", users=users)
    ex = Recording()
    cands = list(runner.discover_inbox(s.inbox))
    rep = steps.run_nightly(s, cands, steps.NightlyRequest(runner="sequential"), ex)
    return s, ex, cands, rep


def test_one_path_maps_files_and_users_and_writes_in_process(ran):
    s, ex, cands, rep = ran
    assert [(kind, name) for kind, name, _ in ex.calls] == [
        ("call", "known_files"),
        ("call", "stage_known"),  # files in the manifest: looked up here, no task each
        ("map", "stage_one"),
        ("call", "write_silver"),
        ("call", "plan_gold"),
        ("map", "build_gold"),  # one per user: what Dask spreads
        ("call", "write_gold"),
        ("call", "plan_summaries"),
        ("map", "summarise_user"),
        ("call", "write_summaries"),
        ("call", "clear_owed"),
        ("call", "quality_report"),
        ("call", "run_report"),
    ]
    mapped = {name: n for kind, name, n in ex.calls if kind == "map"}
    assert mapped == {"stage_one": len(cands), "build_gold": 2, "summarise_user": 2}
    assert rep.gold_refresh is not None and sorted(rep.gold_refresh.users) == ["p001", "p002"]
    assert manifest.pending(s.lake) == {}  # everything owed was written, summaries included
    assert store.read(s.lake, "scores").height == store.read(s.lake, "nightly_features").height
    assert store.read(s.lake, "weekly_summary").height > 0
    md = (s.lake / "reports" / steps.RUN_REPORT).read_text()
    assert md == rep.run_markdown and "Runner: sequential." in md
    assert str(rep.report_path) in md


def test_ingest_without_features_leaves_gold_owed(inbox, tmp_path):
    root, users = inbox
    s = Settings(lake=tmp_path / "lake", inbox=root / "inbox", users=users)
    ex = Recording()
    rep = steps.run_nightly(s, runner.discover_inbox(s.inbox), steps.NightlyRequest(gold=False), ex)
    assert [name for _, name, _ in ex.calls] == [
        "known_files", "stage_known", "stage_one", "write_silver", "quality_report", "run_report"
    ]  # fmt: skip
    assert rep.gold_refresh is None
    assert sorted(manifest.pending(s.lake)) == ["p001", "p002"]
    assert store.read(s.lake, "nightly_features").height == 0
    # The next run owes them and does them, without reading a file again: no file is a task.
    ex = Recording()
    again = steps.run_nightly(s, runner.discover_inbox(s.inbox), None, ex)
    assert ("map", "stage_one", 0) in ex.calls
    assert again.count("ingested") == 0 and again.gold_refresh is not None
    assert sorted(again.gold_refresh.users) == ["p001", "p002"]
    assert manifest.pending(s.lake) == {}


def test_weeks_a_change_reaches(ran):
    """A change on day d moves the weeks from d's own to the one whose history last holds it."""
    s = ran[0]
    from tunewell.coach.weekly import weeks_to_refresh

    nights = store.read(s.lake, "nightly_features")["sleep_date"]
    first, last = nights.min(), nights.max()
    every = weeks_to_refresh(s, "p001", None, None)
    assert every[0] == IsoWeek.of(first) and every[-1] == IsoWeek.of(last)
    assert weeks_to_refresh(s, "p001", last, last) == [IsoWeek.of(last)]
    assert weeks_to_refresh(s, "p001", last + timedelta(days=7), last + timedelta(days=9)) == []
    far = first - timedelta(days=HISTORY_DAYS + 14)
    assert weeks_to_refresh(s, "p001", far, far) == []  # no week's history reaches back there
    assert weeks_to_refresh(s, "p001", date(2000, 1, 1), last) == every
