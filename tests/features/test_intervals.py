"""The shared containment rule and order check: ``outside`` is exactly what ``within`` drops,
and ``in_order`` orders frames whatever their leading keys hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from tunewell.features.intervals import in_order, outside, within

T0 = datetime(2026, 3, 10, 6, tzinfo=UTC)


def _samples() -> pl.DataFrame:
    minutes = [0, 5, 10, 30, 59, 60, 61, 90, 200, 10, 45]
    users = ["a"] * 9 + ["b"] * 2
    return pl.DataFrame(
        {
            "user_id": users,
            "start_utc": [T0 + timedelta(minutes=m) for m in minutes],
            "bpm": [float(i) for i in range(len(minutes))],
        }
    )


def _workouts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "ws": [T0 + timedelta(minutes=5), T0 + timedelta(minutes=60), T0],
            "we": [
                T0 + timedelta(minutes=30),
                T0 + timedelta(minutes=61),
                T0 + timedelta(minutes=20),
            ],
        }
    )


def test_outside_is_the_complement_of_within() -> None:
    s, w = _samples().lazy(), _workouts().lazy()
    kw = {"at": "start_utc", "start": "ws", "end": "we"}
    inside = within(s, w, **kw).select(_samples().columns).collect()
    out = outside(s, w, **kw).collect()
    assert out.columns == _samples().columns
    # start inclusive, end exclusive: 5 and 10 (a's first workout), 60 (its second), 10 (b's)
    assert sorted(inside["bpm"].to_list()) == [1.0, 2.0, 5.0, 9.0]
    both = pl.concat([inside, out]).sort("user_id", "start_utc")
    assert_frame_equal(both, _samples().sort("user_id", "start_utc"))
    assert inside.join(out, on=["user_id", "start_utc"], how="inner").height == 0


def test_in_order_sorts_whatever_the_leading_key_holds() -> None:
    df = _samples().sample(fraction=1.0, shuffle=True, seed=3)
    keys = ["user_id", "start_utc"]
    assert_frame_equal(in_order(df, keys), df.sort(keys))
    one = df.filter(pl.col("user_id") == "a")  # one-valued leading key: only time decides
    assert_frame_equal(in_order(one, keys), one.sort(keys))
    ordered = df.sort(keys)
    assert in_order(ordered, keys)["start_utc"].to_list() == ordered["start_utc"].to_list()
    # equal leading keys, later key out of order: still sorted
    ties = pl.DataFrame({"user_id": ["a", "a"], "d": [1, 1], "start_utc": [T0, T0 - timedelta(1)]})
    assert in_order(ties, ["user_id", "d", "start_utc"])["start_utc"].to_list() == [
        T0 - timedelta(1),
        T0,
    ]
