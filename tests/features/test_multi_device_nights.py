"""Nights that two devices (or a device and its phone) both describe are counted once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from tunewell.features.hrv import nightly_hr
from tunewell.features.sleep import nightly_sleep
from tunewell.lake.frames import conform
from tunewell.settings import UserSettings

USER = UserSettings("u", tz="America/New_York")


def t(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _episode(start: datetime, end: datetime, wake: date) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "start_utc": [start],
            "end_utc": [end],
            "sleep_date": [wake],
            "tst_min": [None],
            "tib_min": [None],
        },
        schema_overrides={"tst_min": pl.Float64, "tib_min": pl.Float64},
    )
    return conform(
        df, "sleep_episode", user=USER, source="apple_health", source_file="f", device="apple watch"
    )


def test_overlapping_stages_of_two_devices_are_a_union_not_a_sum():
    ep = _episode(t(2024, 1, 2, 4), t(2024, 1, 2, 12), date(2024, 1, 2))  # 23:00-07:00 local
    stages = pl.concat(
        [
            conform(
                pl.DataFrame(
                    {
                        "start_utc": [t(2024, 1, 2, 4, 30)],
                        "end_utc": [t(2024, 1, 2, 11, 30)],
                        "stage": [stage],
                        "episode_id": [ep["record_id"][0]],
                    }
                ),
                "sleep_stage",
                user=USER,
                source="apple_health",
                source_file="f",
                device=dev,
            )
            for dev, stage in (("iphone", "asleep"), ("apple watch", "light"))
        ]
    )
    row = nightly_sleep(ep.lazy(), stages.lazy()).collect().row(0, named=True)
    assert (row["tib_min"], row["tst_min"], row["efficiency_pct"]) == (480.0, 420.0, 87.5)
    assert row["waso_min"] == 0 and row["sol_min"] == 30


def test_resting_hr_stamped_at_onset_before_midnight_belongs_to_that_night():
    # WHOOP stamps a night's resting HR at sleep onset: 22:30 local on 1 Jan, wake-up on 2 Jan.
    main = pl.LazyFrame(
        {
            "user_id": ["u", "u"],
            "sleep_date": [date(2024, 1, 2), date(2024, 1, 3)],
            "episode_start_utc": [t(2024, 1, 2, 3, 30), t(2024, 1, 3, 3, 30)],
            "episode_end_utc": [t(2024, 1, 2, 11), t(2024, 1, 3, 11)],
        }
    )
    vit = conform(
        pl.DataFrame(
            {
                "start_utc": [t(2024, 1, 2, 3, 30), t(2024, 1, 3, 3, 30)],
                "metric": ["resting_hr"] * 2,
                "value": [51.0, 58.0],
            }
        ),
        "vitals",
        user=USER,
        source="whoop",
        source_file="f",
    )
    hr = conform(
        pl.DataFrame({"start_utc": [t(2024, 1, 1)], "bpm": [60.0], "context": ["sample"]}),
        "heart_rate",
        user=USER,
        source="whoop",
        source_file="f",
    )
    out = nightly_hr(hr.lazy(), vit.lazy(), main).collect().sort("sleep_date")
    assert out["resting_hr"].to_list() == [51.0, 58.0]
    assert set(out["resting_hr_source"]) == {"vendor"}
