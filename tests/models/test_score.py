"""Gold ``scores`` on synthetic people whose physiology is known (src/synth plants the effects).

The synthetic people's hard training days lower the next night's lnRMSSD (−0.15) and raise its
resting HR (+3 bpm); a short night does the same, more weakly, to the night after it. The index
must find those nights and sit near 0 on ordinary ones, through the real vendor files, ingest,
features and scoring.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.models import score
from tunewell.models.score import SleepModel
from tunewell.settings import Settings
from tunewell.synth.generate import write_inbox
from tunewell.synth.people import DEFAULT_START, simulate

DAYS = 49
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("synth_scores")]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scores")
    pop = simulate(3, DAYS, seed=3)
    users = write_inbox(pop, tmp / "inbox")
    s = Settings(lake=tmp / "lake", inbox=tmp / "inbox", users=users)
    for u in users:
        runner.ingest_paths([tmp / "inbox" / u], u, s)
    score.refresh(s)
    return s, pop


def _truth(pop) -> pl.DataFrame:
    n = pop.nights.sort("user_id", "sleep_date")
    return n.select(
        "user_id",
        "sleep_date",
        "hard_day_before",
        pl.col("is_short").shift(1).over("user_id").fill_null(False).alias("after_short"),
        "is_short",
    )


def test_every_night_is_scored_and_calibrating_comes_first(lake):
    s, _ = lake
    nightly = store.read(s.lake, "nightly_features")
    sc = store.read(s.lake, "scores")
    assert sc.height == nightly.height
    assert sc["record_id"].n_unique() == sc.height
    j = nightly.join(sc, on=["user_id", "sleep_date"])
    slept = j.filter(pl.col("sleep_ok"))
    assert slept["sleep_quality"].null_count() == 0
    assert slept["sleep_quality"].is_between(0, 100).all()
    assert (j.filter(~pl.col("sleep_ok"))["sleep_quality"].null_count()) == j.filter(
        ~pl.col("sleep_ok")
    ).height
    first = j.sort("sleep_date").group_by("user_id").head(14)
    assert (
        first.filter(pl.col("balance_state").is_not_null())["balance_state"] == "calibrating"
    ).all()
    later = j.filter(pl.col("ln_rmssd_n60") >= 14, pl.col("resting_hr_n60") >= 14)
    assert later.height > 40
    assert (later["balance_state"] != "calibrating").all()
    assert set(sc["model_version"].unique()) == {score.default_sleep_model().version}
    assert sc["balance_version"].unique().to_list() == ["balance-1.0.0"]
    for c in ("flag_short_sleep", "flag_low_efficiency", "flag_long_latency", "flag_fragmented"):
        assert (
            slept.join(sc.select("user_id", "sleep_date"), on=["user_id", "sleep_date"])[
                c
            ].null_count()
            < slept.height
        )


def test_index_falls_after_hard_days_and_after_short_nights(lake):
    s, pop = lake
    sc = store.read(s.lake, "scores").filter(pl.col("balance_index").is_not_null())
    j = sc.join(_truth(pop), on=["user_id", "sleep_date"])
    hard = j.filter(pl.col("hard_day_before"))["balance_index"]
    short = j.filter(pl.col("after_short") & ~pl.col("hard_day_before"))["balance_index"]
    ordinary = j.filter(~pl.col("hard_day_before") & ~pl.col("after_short"))["balance_index"]
    msg = f"hard {hard.mean():.1f} short {short.mean():.1f} ordinary {ordinary.mean():.1f}"
    assert hard.len() >= 10 and ordinary.len() >= 20 and short.len() >= 2, msg
    assert hard.mean() < 0, msg
    assert ordinary.mean() - hard.mean() > 20, msg
    assert short.mean() < ordinary.mean(), msg
    # hard days are ~40 % of build weeks and sit in the baseline, so "usual" lies between the
    # two kinds of night: ordinary nights are above 0, but within one SD (100/3 points)
    assert abs(ordinary.mean()) < 100 / 3, msg
    assert (hard < ordinary.median()).mean() > 0.7, msg


def test_vendor_scores_shuffled_or_removed_give_identical_scores(lake, tmp_path):
    s, _ = lake
    before = store.read(s.lake, "scores").sort("user_id", "sleep_date")
    vs = store.read(s.lake, "vendor_score")
    assert vs.height > 0  # the synthetic Garmin files carry sleep scores
    shuffled = vs.with_columns(pl.col("value").shuffle(seed=1) * 0.5)
    store.upsert(s.lake, "vendor_score", shuffled)
    score.refresh(s, full=True)
    after = store.read(s.lake, "scores").sort("user_id", "sleep_date")
    assert_frame_equal(before, after)
    # removed altogether
    for part in store.table_dir(s.lake, "vendor_score").rglob("*.parquet"):
        part.unlink()
    assert store.read(s.lake, "vendor_score").is_empty()
    score.refresh(s, full=True)
    assert_frame_equal(before, store.read(s.lake, "scores").sort("user_id", "sleep_date"))


def test_rescore_with_a_new_model_version_replaces_rows(lake):
    s, _ = lake
    before = store.read(s.lake, "scores")
    default = score.default_sleep_model()
    new = SleepModel({**default.bundle, "offset": default.bundle["offset"] + 0.4}, "sq-test-2")
    for user in store.users_in(s.lake):
        nightly = store.scan(s.lake, "nightly_features", [user]).collect()
        store.upsert(s.lake, "scores", score.score_nights(nightly, new))
    after = store.read(s.lake, "scores")
    assert after.height == before.height
    assert after["model_version"].unique().to_list() == ["sq-test-2"]
    j = before.join(after, on="record_id", suffix="_new").filter(pl.col("sleep_quality") < 80)
    assert (j["sleep_quality_new"] > j["sleep_quality"]).all()
    assert score.rescore(s) == before.height  # back to the shipped model
    again = store.read(s.lake, "scores").sort("user_id", "sleep_date")
    assert_frame_equal(before.sort("user_id", "sleep_date"), again)


def test_incremental_scores_equal_a_full_rescore(tmp_path):
    pop = simulate(3, 35, seed=11)
    users = write_inbox(pop, tmp_path / "inbox")
    user = "p003"  # Garmin only: one file per day, so the split is by date
    files = sorted((tmp_path / "inbox" / user).rglob("*.fit"))
    cut = DEFAULT_START + timedelta(days=24)
    early = [f for f in files if f.stat().st_size and _day(f) < cut]
    late = [f for f in files if f not in early]
    assert early and late
    s = Settings(lake=tmp_path / "lake", inbox=tmp_path / "inbox", users=users)
    score.refresh(s, runner.ingest_paths(early, user, s).changed_dates)
    stats = score.refresh(s, runner.ingest_paths(late, user, s).changed_dates)
    assert stats.ranges[user][0] != "all"
    inc = store.read(s.lake, "scores").sort("sleep_date")
    score.refresh(s, None, full=True)
    full = store.read(s.lake, "scores").sort("sleep_date")
    assert inc.height == full.height >= 30
    assert_frame_equal(inc, full, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def _day(path: Path):
    from garmin_fit_sdk import Decoder, Stream

    msgs, _ = Decoder(Stream.from_file(str(path))).read()
    return msgs["file_id_mesgs"][0]["time_created"].date()
