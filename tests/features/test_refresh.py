"""The nightly refresh recomputes only changed dates plus the trailing window, and the result
equals a full recompute."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from garmin_fit_sdk import Decoder, Stream
from polars.testing import assert_frame_equal

from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.settings import Settings
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import DEFAULT_START, simulate


def _created(path: Path):
    msgs, errors = Decoder(Stream.from_file(str(path))).read()
    assert not errors, errors
    return msgs["file_id_mesgs"][0]["time_created"]


@pytest.mark.slow
def test_two_incremental_nights_equal_one_full_recompute(tmp_path):
    pop = simulate(3, 35, seed=11)
    users = write_inbox(pop, tmp_path / "inbox")
    user = "p003"  # Garmin only: files carry their creation time
    files = sorted((tmp_path / "inbox" / user).rglob("*.fit"))
    cut = DEFAULT_START + timedelta(days=24)
    early = [f for f in files if _created(f).date() < cut]
    late = [f for f in files if f not in early]
    assert early and late
    s = Settings(lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users)

    rep = runner.ingest_paths(early, user, s)
    refresh_gold(s, rep.changed_dates)
    rep = runner.ingest_paths(late, user, s)
    assert min(rep.changed_dates[user]) >= cut - timedelta(days=2)
    stats = refresh_gold(s, rep.changed_dates)
    assert stats.ranges[user][0] != "all"  # it really was incremental
    incremental = {
        t: store.read(s.lake, t).sort("user_id", store.table(t).time_column)
        for t in ("nightly_features", "daily_load")
    }

    refresh_gold(s, None, full=True)
    for t, inc in incremental.items():
        full = store.read(s.lake, t).sort("user_id", store.table(t).time_column)
        assert full.height == inc.height > 0
        assert_frame_equal(inc, full, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    nights = incremental["nightly_features"].filter(pl.col("tst_min").is_not_null())
    assert nights.height >= 30


def test_gold_owed_by_a_crashed_run_is_caught_up_next_time(tmp_path):
    from tunewell.lake import manifest

    pop = simulate(3, 10, seed=5)
    users = write_inbox(pop, tmp_path / "inbox")
    s = Settings(lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users)
    files = sorted((tmp_path / "inbox" / "p003").rglob("*.fit"))
    runner.ingest_paths(files, "p003", s)  # silver written ... and the process dies here
    assert store.read(s.lake, "nightly_features").is_empty()
    owed = manifest.pending(s.lake)["p003"]
    assert len(owed) >= 10

    again = runner.ingest_paths(files, "p003", s)  # next night: nothing new in the inbox
    assert again.count("already_seen") == len(files) and not again.changed_dates
    stats = refresh_gold(s)
    assert stats.users == ["p003"]
    assert store.read(s.lake, "nightly_features").height >= 9
    assert manifest.pending(s.lake) == {}
    assert refresh_gold(s).users == []  # nothing owed any more


@pytest.mark.slow
def test_users_built_in_worker_processes_write_what_the_sequential_run_writes(tmp_path):
    pop = simulate(3, 14, seed=13)
    users = write_inbox(pop, tmp_path / "inbox")
    s = Settings(lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users)
    for user in sorted(users):
        files = sorted(p for p in (tmp_path / "inbox" / user).rglob("*") if p.is_file())
        runner.ingest_paths(files, user, s)
    tables = ("nightly_features", "daily_load")

    def gold() -> dict[str, pl.DataFrame]:
        return {
            t: store.read(s.lake, t).sort("user_id", store.table(t).time_column) for t in tables
        }

    seq = refresh_gold(s, None, full=True, max_workers=1)
    sequential = gold()
    par = refresh_gold(s, None, full=True, max_workers=2)
    assert par.users == seq.users == sorted(users) and par.rows == seq.rows
    for t, frame in gold().items():
        assert frame.height == sequential[t].height > 0
        assert frame["user_id"].n_unique() == len(users)
        assert_frame_equal(frame, sequential[t], check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
