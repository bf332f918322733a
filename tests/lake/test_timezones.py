"""Offsets from the user's zone history: DST nights and travel are ordinary days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from tunewell.lake.timezones import local_date, zone_offsets
from tunewell.settings import UserSettings, ZonePeriod


def _frame(*utc: datetime) -> pl.DataFrame:
    return pl.DataFrame({"start_utc": list(utc)}).with_columns(
        pl.col("start_utc").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    )


def test_spring_forward_night_in_berlin():
    user = UserSettings("u", tz="Europe/Berlin")
    df = zone_offsets(_frame(datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 1, 30)), user)
    # 01:00 UTC is 03:00 CEST: clocks jumped from +60 to +120 during the night.
    assert df["utc_offset_min"].to_list() == [60, 120]
    assert set(df["tz_source"]) == {"user_setting"}


def test_fall_back_night_in_new_york():
    user = UserSettings("u", tz="America/New_York")
    df = zone_offsets(_frame(datetime(2026, 11, 1, 5, 30), datetime(2026, 11, 1, 6, 30)), user)
    assert df["utc_offset_min"].to_list() == [-240, -300]


def test_travel_history_switches_zone_at_local_midnight():
    user = UserSettings(
        "u",
        tz="Europe/Berlin",
        tz_history=(
            ZonePeriod(date(2026, 5, 4), "America/New_York"),
            ZonePeriod(date(2026, 5, 11), "Europe/Berlin"),
        ),
    )
    df = zone_offsets(
        _frame(datetime(2026, 5, 3, 12), datetime(2026, 5, 5, 12), datetime(2026, 5, 12, 12)),
        user,
    )
    assert df["utc_offset_min"].to_list() == [120, -240, 120]
    assert df["tz_name"].to_list() == ["Europe/Berlin", "America/New_York", "Europe/Berlin"]


def test_record_offsets_win_over_settings():
    user = UserSettings("u", tz="Europe/Berlin")
    df = _frame(datetime(2026, 1, 1, 23, 30)).with_columns(
        pl.lit(-300, dtype=pl.Int32).alias("utc_offset_min"),
        pl.lit(None, dtype=pl.String).alias("tz_name"),
        pl.lit("record").alias("tz_source"),
    )
    out = zone_offsets(df, user)
    assert out["utc_offset_min"].to_list() == [-300]
    assert out["tz_source"].to_list() == ["record"]
    assert out.select(local_date())["start_utc"].to_list() == [date(2026, 1, 1)]


def test_unknown_zone_is_labelled_assumed_utc():
    df = zone_offsets(_frame(datetime(2026, 1, 1, tzinfo=UTC)), UserSettings("u"))
    assert df["utc_offset_min"].to_list() == [0]
    assert df["tz_source"].to_list() == ["assumed"]


def test_an_explicit_utc_home_zone_is_a_user_setting():
    df = zone_offsets(_frame(datetime(2026, 1, 1, tzinfo=UTC)), UserSettings("u", tz="UTC"))
    assert df["tz_source"].to_list() == ["user_setting"]
