"""Nightly runs as they happen over weeks: files arrive day by day, some late, some ranges are
backfilled; the lake must end up as if everything had been computed at once.

These run ``steps.run_nightly``, the path the nightly flow runs as Prefect tasks and
``tunewell ingest`` runs in process (ingest the inbox, refresh what the lake records as owed:
features, scores, the touched weeks' summaries); test_flow_runtime.py runs it through Prefect.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from garmin_fit_sdk import Decoder, Stream

from tests.pipelines.lakecheck import lake_content
from tunewell.features.refresh import backfill_dates
from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.pipelines import steps
from tunewell.settings import Settings
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import DEFAULT_START, simulate

pytestmark = pytest.mark.slow

DAYS = 21
TUESDAY = date(2026, 3, 24)  # day 14 of the synthetic period (DEFAULT_START is a Tuesday too)


def _created(path: Path) -> date:
    msgs, errors = Decoder(Stream.from_file(str(path))).read()
    assert not errors, errors
    return msgs["file_id_mesgs"][0]["time_created"].date()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict, dict[Path, date]]:
    """Two people with Garmin files only (each file carries the day the watch wrote it)."""
    assert DEFAULT_START.weekday() == TUESDAY.weekday() == 1
    root = tmp_path_factory.mktemp("incr")
    users = write_inbox(simulate(2, DAYS, seed=21), root / "all", formats=("garmin_fit",))
    created = {f: _created(f) for f in sorted((root / "all").rglob("*.fit"))}
    return root, users, created


@pytest.fixture(scope="module")
def full_lake(source, tmp_path_factory) -> Path:
    """One nightly over every file at once: what the other runs must end up equal to."""
    root, users, _ = source
    once = Settings(lake=tmp_path_factory.mktemp("once") / "lake", inbox=root / "all", users=users)
    _nightly(once)
    return Path(once.lake)


def _nightly(settings: Settings) -> runner.RunReport:
    """What the nightly flow does, without Prefect."""
    return steps.run_nightly(settings, runner.discover_inbox(settings.inbox)).run


def _deliver(files: list[Path], src: Path, inbox: Path) -> None:
    for f in files:
        dst = inbox / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)


def _gold(lake: Path, name: str = "nightly_features") -> pl.DataFrame:
    return store.read(lake, name).sort("user_id", store.table(name).time_column)


def test_nightly_after_nightly_equals_one_full_run(source, full_lake, tmp_path):
    root, users, created = source
    daily = Settings(lake=tmp_path / "daily", inbox=tmp_path / "inbox", users=users)
    for runs, cut in enumerate((10, 11, DAYS + 2)):  # 10 days, then 1 new day, then 11
        day = DEFAULT_START + timedelta(days=cut)
        _deliver([f for f, d in created.items() if d < day], root / "all", daily.inbox)
        rep = _nightly(daily)
        assert rep.count("ingested") > 0, f"run {runs} ({day}) got nothing new"
        if runs:
            assert rep.count("already_seen") > 0  # only new files were read
    got, want = lake_content(daily.lake), lake_content(full_lake)
    assert got["nightly_features"][0] >= 2 * (DAYS - 2)
    assert got["daily_load"][0] > 0 and got["sleep_episode"][0] > 0
    assert got["scores"][0] == got["nightly_features"][0]
    assert got["weekly_summary"][0] == 2 * 4  # 2 people x ISO weeks 11-14 of 2026
    assert got == want


def test_late_file_for_tuesday_changes_tuesday_onwards_only(source, full_lake, tmp_path):
    root, users, created = source
    late = [
        f for f, d in created.items() if d == TUESDAY and "p001" in f.parts and "SLEEP" in f.name
    ]
    assert len(late) == 1
    s = Settings(lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users)
    _deliver([f for f in created if f not in late], root / "all", s.inbox)
    _nightly(s)
    tables = {"nightly_features": "sleep_date", "daily_load": "date", "scores": "sleep_date"}
    before = {t: _gold(s.lake, t) for t in [*tables, "weekly_summary"]}
    tue = before["nightly_features"].filter(
        (pl.col("user_id") == "p001") & (pl.col("sleep_date") == TUESDAY)
    )
    assert tue.is_empty() or tue["tst_min"].is_null().all()  # no main sleep for Tuesday yet

    _deliver(late, root / "all", s.inbox)
    rep = _nightly(s)
    assert rep.count("ingested") == 1 and set(rep.changed_dates) == {"p001"}
    after = {t: _gold(s.lake, t) for t in [*tables, "weekly_summary"]}
    for t, col in [*tables.items(), ("weekly_summary", "week_start")]:
        old, new = before[t], after[t]
        # Nothing before Tuesday moved, for anyone; the other person did not move at all.
        # (a week's summary: weeks that ended before Tuesday's week began)
        early = pl.col(col) < (TUESDAY - timedelta(days=1) if t == "weekly_summary" else TUESDAY)
        assert lake_frame(new.filter(early)) == lake_frame(old.filter(early)), t
        p2 = pl.col("user_id") == "p002"
        assert lake_frame(new.filter(p2)) == lake_frame(old.filter(p2)), t
    night = after["nightly_features"].filter(
        (pl.col("user_id") == "p001") & (pl.col("sleep_date") == TUESDAY)
    )
    assert night.height == 1 and night["tst_min"][0] > 0  # Tuesday itself changed
    # ... and what depends on it: Tuesday's night is in the following nights' 7-day means.
    nxt = pl.col("sleep_date") == TUESDAY + timedelta(days=1)
    p1 = pl.col("user_id") == "p001"
    old_b7 = before["nightly_features"].filter(p1 & nxt)["tst_min_b7"][0]
    new_b7 = after["nightly_features"].filter(p1 & nxt)["tst_min_b7"][0]
    assert old_b7 != new_b7
    # Tuesday's score and the summary of Tuesday's week (ISO 2026-W13) moved as well.
    new_score = after["scores"].filter(p1 & (pl.col("sleep_date") == TUESDAY))
    old_score = before["scores"].filter(p1 & (pl.col("sleep_date") == TUESDAY))
    assert lake_frame(new_score) != lake_frame(old_score)
    w13 = p1 & (pl.col("week") == "2026-W13")
    assert before["weekly_summary"].filter(w13).height == 1
    old_w, new_w = before["weekly_summary"].filter(w13), after["weekly_summary"].filter(w13)
    assert lake_frame(new_w) != lake_frame(old_w)

    assert lake_content(s.lake) == lake_content(full_lake)


def lake_frame(df: pl.DataFrame) -> str:
    import polars.selectors as cs

    return df.with_columns(cs.float().round_sig_figs(10)).write_csv()


def test_backfill_rederives_the_range_and_nothing_before(source, full_lake, tmp_path):
    root, users, _ = source
    s = Settings(lake=tmp_path / "lake", inbox=root / "all", users=users)
    shutil.copytree(full_lake, s.lake)
    truth = _gold(s.lake)
    since, until = TUESDAY, TUESDAY + timedelta(days=3)
    # Damage gold rows before, inside and after the range, for both people.
    hit = pl.col("sleep_date").is_in([since - timedelta(days=3), since + timedelta(days=2)])
    hit = hit | (pl.col("sleep_date") == until + timedelta(days=2))
    store.upsert(s.lake, "nightly_features", truth.filter(hit).with_columns(tst_min=pl.lit(-1.0)))

    changed = backfill_dates(s, since, until, ["p001"])
    assert changed == {"p001": [since + timedelta(days=i) for i in range(4)]}
    req = steps.NightlyRequest(since=since, until=until, users=("p001",))
    stats = steps.run_nightly(s, runner.discover_inbox(s.inbox), req).gold_refresh
    assert stats is not None
    assert stats.users == ["p001"] and stats.ranges["p001"][0] == str(since)
    got = _gold(s.lake)
    p1, first = pl.col("user_id") == "p001", pl.col("sleep_date") >= since
    assert lake_frame(got.filter(p1 & first)) == lake_frame(truth.filter(p1 & first))
    # Before the range and the other person: still as damaged (a backfill touches its range and
    # the rows whose windows reach into it, nothing else).
    left = got.filter(~(p1 & first) & hit)
    assert truth.filter(hit).height == 6
    assert left.height == 4 and (left["tst_min"] == -1).all()

    # No --until: up to the last night in the lake.
    last = max(truth["sleep_date"].max(), _gold(s.lake, "daily_load")["date"].max())
    assert backfill_dates(s, until, None, ["p002"])["p002"][-1] == last
