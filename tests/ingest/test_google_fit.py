"""Google Fit daily metrics: header-driven columns, sparse days."""

from __future__ import annotations

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.store import read


def _day(y: int, m: int, d: int) -> pl.Expr:
    return pl.col("start_utc") == pl.datetime(y, m, d, time_zone="UTC")


@pytest.mark.realdata
def test_daily_metrics(lake):
    from tunewell.settings import Settings, UserSettings

    settings = Settings(lake=lake, users={"g": UserSettings("g", tz="UTC")})
    f = shared("google-fit", "Daily activity metrics.csv")
    rep = ingest_paths([f], "g", settings)
    assert rep.files[0].status == "ingested", rep.files[0].error
    raw = pl.read_csv(f, infer_schema=False)

    steps = read(lake, "steps", ["g"])
    assert steps.height == raw["Step count"].drop_nulls().len() == 1029
    assert steps.filter(_day(2019, 6, 1))["steps"].to_list() == [15757.0]
    assert ((steps["end_utc"] - steps["start_utc"]).dt.total_hours() == 24).all()

    hr = read(lake, "heart_rate", ["g"])
    day = dict(hr.filter(_day(2020, 4, 14)).select("context", "bpm").rows())
    assert day == {
        "daily_avg": pytest.approx(91.28198757763975),
        "daily_max": 154.0,
        "daily_min": 61.0,
    }
    hr_cols = ["Average heart rate (bpm)", "Max heart rate (bpm)", "Min heart rate (bpm)"]
    assert hr.height == raw.select(pl.col(hr_cols).is_not_null().sum()).sum_horizontal().item()

    w = read(lake, "vitals", ["g"])
    assert w.filter(_day(2018, 3, 19)).select("metric", "value", "unit").rows() == [
        ("weight", 72.0, "kg")
    ]
    assert w.height == 21


def test_sparse_header_and_local_days(settings, tmp_path):
    f = tmp_path / "in" / "Daily activity metrics.csv"
    f.parent.mkdir()
    f.write_text("Date,Move Minutes count,Step count\n2021-07-01,30,4200\n2021-07-02,12,\n")
    rep = ingest_paths([f], "u2", settings)
    assert rep.files[0].status == "ingested"
    steps = read(settings.lake, "steps", ["u2"])
    # New York midnight is 04:00 UTC in July; the day without a count has no row
    assert steps.select("start_utc", "steps").rows() == [
        (pl.select(pl.datetime(2021, 7, 1, 4, time_zone="UTC")).item(), 4200.0)
    ]
    assert read(settings.lake, "heart_rate", ["u2"]).is_empty()
