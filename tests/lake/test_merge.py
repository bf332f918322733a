"""Several devices: union per time slice by priority, never summed, nothing only one saw lost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from tunewell.lake.frames import conform
from tunewell.lake.merge import resolve, resolve_silver, union_intervals
from tunewell.settings import UserSettings

USER = UserSettings("u1", tz="Europe/Berlin")
PRIO = ("garmin_fit", "apple_health")
T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def steps(source: str, start: datetime, minutes: int, per_min: float, step_min: int = 1):
    n = minutes // step_min
    df = pl.DataFrame(
        {
            "start_utc": [start + timedelta(minutes=i * step_min) for i in range(n)],
            "end_utc": [start + timedelta(minutes=(i + 1) * step_min) for i in range(n)],
            "steps": [per_min * step_min] * n,
        }
    )
    return conform(df, "steps", user=USER, source=source, source_file="f", device=source)


def test_watch_and_phone_steps_give_the_union_not_the_sum():
    # Watch (priority) worn 08:00-12:00 at 10/min; phone carried 06:00-20:00 at 7/min, hourly rows.
    watch = steps("garmin_fit", T0 + timedelta(hours=2), 240, 10)
    phone = steps("apple_health", T0, 14 * 60, 7, step_min=60)
    out = resolve("steps", pl.concat([watch, phone]).lazy(), PRIO).collect()
    total = out["steps"].sum()
    assert total == 240 * 10 + (14 - 4) * 60 * 7
    assert total != watch["steps"].sum() + phone["steps"].sum()  # not the sum
    assert total != watch["steps"].sum()  # not the watch alone
    assert set(out["source"]) == {"garmin_fit", "apple_health"}


def test_partial_overlap_keeps_the_uncovered_share():
    watch = steps("garmin_fit", T0 + timedelta(minutes=40), 20, 10)  # 06:40-07:00
    phone = steps("apple_health", T0, 60, 6, step_min=60)  # one hourly row, 360 steps
    out = resolve("steps", pl.concat([watch, phone]).lazy(), PRIO).collect()
    phone_left = out.filter(pl.col("source") == "apple_health")["steps"].sum()
    assert abs(phone_left - 360 * 40 / 60) < 1e-9


def test_priority_order_is_configurable():
    watch = steps("garmin_fit", T0, 60, 10)
    phone = steps("apple_health", T0, 60, 7)
    out = resolve("steps", pl.concat([watch, phone]).lazy(), ("apple_health", "garmin_fit"))
    assert out.collect()["steps"].sum() == 60 * 7


def test_heart_rate_one_source_per_minute():
    def hr(source, start, n, bpm):
        df = pl.DataFrame(
            {
                "start_utc": [start + timedelta(seconds=15 * i) for i in range(n)],
                "bpm": [bpm] * n,
                "context": ["sample"] * n,
            }
        )
        return conform(df, "heart_rate", user=USER, source=source, source_file="f")

    both = pl.concat([hr("garmin_fit", T0, 8, 60.0), hr("apple_health", T0, 16, 70.0)])
    out = resolve("heart_rate", both.lazy(), PRIO).collect()
    first2 = out.filter(pl.col("start_utc") < T0 + timedelta(minutes=2))
    assert set(first2["source"]) == {"garmin_fit"}
    assert out.filter(pl.col("source") == "apple_health").height == 8  # minutes 2-3 kept


def episode(source, start, hours, vid):
    df = pl.DataFrame(
        {
            "start_utc": [start],
            "end_utc": [start + timedelta(hours=hours)],
            "sleep_date": [date(2026, 6, 2)],
            "vendor_episode_id": [vid],
        }
    )
    return conform(df, "sleep_episode", user=USER, source=source, source_file="f")


def test_sleep_overlaps_and_short_gaps_make_one_night():
    night = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
    eps = pl.concat(
        [
            episode("garmin_fit", night, 3, "a"),  # 21-00
            episode("garmin_fit", night + timedelta(hours=3, minutes=40), 3, "b"),  # split night
            episode("apple_health", night - timedelta(minutes=20), 7, "c"),  # phone saw it too
            episode("apple_health", night + timedelta(hours=16), 1, "nap"),  # only phone: kept
        ]
    )
    out = resolve("sleep_episode", eps.lazy(), PRIO).collect()
    assert sorted(out["vendor_episode_id"]) == ["a", "b", "nap"]
    nights = out.group_by("night_id").agg(pl.col("vendor_episode_id").sort())
    assert sorted(map(tuple, nights["vendor_episode_id"].to_list())) == [("a", "b"), ("nap",)]


def test_resolve_silver_counts_what_was_dropped():
    watch = steps("garmin_fit", T0, 60, 10)
    phone = steps("apple_health", T0, 60, 7)
    _, counts = resolve_silver({"steps": pl.concat([watch, phone]).lazy()}, PRIO)
    (c,) = counts
    assert (c.rows_in, c.rows_out, c.dropped) == (120, 60, 60)


def test_union_intervals_with_gap():
    df = pl.DataFrame(
        {
            "user_id": ["u"] * 3,
            "start_utc": [T0, T0 + timedelta(minutes=50), T0 + timedelta(hours=5)],
            "end_utc": [
                T0 + timedelta(minutes=30),
                T0 + timedelta(hours=1),
                T0 + timedelta(hours=6),
            ],
        }
    )
    assert union_intervals(df.lazy(), ["user_id"]).collect().height == 3
    assert union_intervals(df.lazy(), ["user_id"], gap_min=30).collect().height == 2


def test_the_same_workout_from_two_devices_is_kept_once():
    def wo(source, start, minutes):
        df = pl.DataFrame(
            {
                "start_utc": [start],
                "end_utc": [start + timedelta(minutes=minutes)],
                "activity": ["running"],
                "duration_min": [float(minutes)],
            }
        )
        return conform(df, "workout", user=USER, source=source, source_file="f")

    both = pl.concat(
        [
            wo("garmin_fit", T0, 45),
            wo("apple_health", T0 + timedelta(minutes=1), 44),
            wo("apple_health", T0 + timedelta(hours=5), 30),
        ]
    )
    out = resolve("workout", both.lazy(), PRIO).collect().sort("start_utc")
    assert out["source"].to_list() == ["garmin_fit", "apple_health"]


def test_minute_hourly_and_daily_rows_of_one_source_are_not_summed():
    minutes = steps("fitabase", T0, 120, 5)  # 06:00-08:00 minute rows: 600 steps
    hours = steps("fitabase", T0, 4 * 60, 300, step_min=60)  # 06:00-10:00 hourly: 4 x 18000
    day = steps("fitabase", T0 - timedelta(hours=6), 24 * 60, 1, step_min=24 * 60)
    out = resolve("steps", pl.concat([day, hours, minutes]).lazy(), PRIO).collect()
    # minutes where they exist, hours 08-10, and the day's total pro rata for the other 20 h
    expected = 600 + 2 * 300 * 60 + 1440 * 20 / 24
    assert abs(out["steps"].sum() - expected) < 1e-6


def test_a_night_only_the_lower_priority_source_saw_survives_a_nap_beside_it():
    night = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
    eps = pl.concat(
        [
            episode("apple_health", night, 8, "ring night"),  # 21:00-05:00, only the phone saw it
            episode("garmin_fit", night + timedelta(hours=8, minutes=30), 0.33, "watch nap"),
        ]
    )
    out = resolve("sleep_episode", eps.lazy(), PRIO).collect().sort("start_utc")
    assert out["vendor_episode_id"].to_list() == ["ring night", "watch nap"]
    assert out["night_id"].n_unique() == 1  # within 60 min: one night cluster


def test_workout_and_sample_heart_rate_of_one_minute_come_from_one_source():
    def hr(source, context, bpm):
        df = pl.DataFrame(
            {
                "start_utc": [T0, T0 + timedelta(seconds=30)],
                "bpm": [bpm, bpm],
                "context": [context, context],
            }
        )
        return conform(df, "heart_rate", user=USER, source=source, source_file="f")

    daily = conform(
        pl.DataFrame({"start_utc": [T0], "bpm": [71.0], "context": ["daily_avg"]}),
        "heart_rate",
        user=USER,
        source="apple_health",
        source_file="f",
    )
    both = pl.concat(
        [hr("garmin_fit", "workout", 150.0), hr("apple_health", "sample", 148.0), daily]
    )
    out = resolve("heart_rate", both.lazy(), PRIO).collect()
    assert sorted(zip(out["source"], out["context"], strict=True)) == [
        ("apple_health", "daily_avg"),
        ("garmin_fit", "workout"),
        ("garmin_fit", "workout"),
    ]


def test_daily_vitals_compete_within_the_local_day():
    # Berlin: 23:30 UTC on 1 June is already 2 June locally, like the phone's 08:00 value.
    def rhr(source, when, value):
        df = pl.DataFrame({"start_utc": [when], "metric": ["resting_hr"], "value": [value]})
        return conform(df, "vitals", user=USER, source=source, source_file="f")

    both = pl.concat(
        [
            rhr("garmin_fit", datetime(2026, 6, 1, 23, 30, tzinfo=UTC), 50.0),
            rhr("apple_health", datetime(2026, 6, 2, 6, 0, tzinfo=UTC), 55.0),
        ]
    )
    out = resolve("vitals", both.lazy(), PRIO).collect()
    assert out["value"].to_list() == [50.0]


def test_two_devices_nightly_hrv_of_one_night_is_not_averaged():
    def nightly(source, when, value):
        df = pl.DataFrame(
            {"start_utc": [when], "metric": ["rmssd"], "window": ["nightly"], "value_ms": [value]}
        )
        return conform(df, "hrv", user=USER, source=source, source_file="f")

    # the ring stamps its value at bedtime (22:30 Berlin), the watch at wake-up (06:45)
    both = pl.concat(
        [
            nightly("apple_health", datetime(2026, 6, 1, 20, 30, tzinfo=UTC), 40.0),
            nightly("garmin_fit", datetime(2026, 6, 2, 4, 45, tzinfo=UTC), 52.0),
            nightly("apple_health", datetime(2026, 6, 2, 20, 30, tzinfo=UTC), 41.0),
        ]
    )
    out = resolve("hrv", both.lazy(), PRIO).collect().sort("start_utc")
    assert out["value_ms"].to_list() == [52.0, 41.0]


def _hr(source: str, start: datetime, n: int, bpm: float = 60.0) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "start_utc": [start + timedelta(seconds=20 * i) for i in range(n)],
            "bpm": [bpm] * n,
            "context": ["sample"] * n,
        }
    )
    return conform(df, "heart_rate", user=USER, source=source, source_file="f")


def test_merge_counts_equal_those_of_resolving_everything():
    """The run report's cheap counts are ``resolve_silver``'s: one source, two sources, steps at
    two resolutions of one source, and stages whose episode the merge dropped."""
    from tunewell.lake.merge import merge_counts

    def episode(source: str, start: datetime, hours: float) -> pl.DataFrame:
        df = pl.DataFrame({"start_utc": [start], "end_utc": [start + timedelta(hours=hours)]})
        return conform(df, "sleep_episode", user=USER, source=source, source_file="f")

    night = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
    eps = pl.concat([episode("garmin_fit", night, 8), episode("apple_health", night, 7.5)])
    stage_rows = []
    for ep in eps.iter_rows(named=True):
        df = pl.DataFrame(
            {
                "start_utc": [ep["start_utc"]],
                "end_utc": [ep["end_utc"]],
                "stage": ["light"],
                "episode_id": [ep["record_id"]],
            }
        )
        stage_rows.append(
            conform(df, "sleep_stage", user=USER, source=ep["source"], source_file="f")
        )
    hourly = steps("apple_health", T0, 120, 5, step_min=60)
    cases = [
        {"heart_rate": _hr("apple_health", T0, 50), "steps": steps("apple_health", T0, 30, 4)},
        {
            "heart_rate": pl.concat([_hr("apple_health", T0, 50), _hr("garmin_fit", T0, 20)]),
            "steps": pl.concat([steps("garmin_fit", T0, 60, 10), steps("apple_health", T0, 90, 7)]),
            "sleep_episode": eps,
            "sleep_stage": pl.concat(stage_rows),
        },
        {"steps": pl.concat([steps("apple_health", T0, 60, 3), hourly])},
    ]
    for tables in cases:
        silver = {k: v.lazy() for k, v in tables.items()}
        _, want = resolve_silver(silver, PRIO)
        assert merge_counts(silver, PRIO) == want
        assert any(c.dropped for c in want) or len(tables) == 2
