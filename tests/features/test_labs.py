"""Lab marker features: latest value, trend, range position, saliva cortisol ratio; never an
input of the nightly features."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import shared
from tunewell.features import labs
from tunewell.features.refresh import FEATURE_INPUTS, refresh_gold
from tunewell.ingest.runner import ingest_paths
from tunewell.lake.frames import conform
from tunewell.lake.merge import resolve
from tunewell.lake.store import read
from tunewell.settings import UserSettings
from tunewell.synth import labs as synth_labs

USER = UserSettings("u1", tz="Europe/Berlin")


def _lab(rows: list[dict], source: str = "lab_csv") -> pl.DataFrame:
    df = pl.DataFrame(rows).with_columns(pl.col("start_utc").dt.replace_time_zone("UTC"))
    return conform(df, "lab_result", user=USER, source=source, source_file="f" * 64)


def _r(day: int, value: float | None, **kw) -> dict:
    base = {
        "start_utc": datetime(2026, 1, day, 7, 0),
        "code": "2276-4",
        "code_system": "http://loinc.org",
        "name": "Ferritin",
        "value": value,
        "unit": "ng/mL",
        "reference_low": 30.0,
        "reference_high": 400.0,
        "status": "final",
    }
    return {**base, **kw}


def test_latest_trend_and_position():
    lab = _lab(
        [
            _r(2, 20.0),
            _r(9, 26.0),
            _r(16, 35.0, interpretation="N"),
            _r(20, 500.0, status="entered-in-error"),  # withdrawn by the lab: ignored
            _r(3, 4.9, code="3016-3", name="TSH", unit="m[IU]/L", reference_low=0.4,
               reference_high=4.0, interpretation="H"),
            _r(3, None, code="5196-1", name="HBsAg", unit=None, value_text="negative",
               reference_low=None, reference_high=None),
        ]
    )  # fmt: skip
    s = labs.marker_summary(lab)
    by = {r["name"]: r for r in s.iter_rows(named=True)}
    f = by["Ferritin"]
    assert (f["n_results"], f["latest_value"], f["latest_date"]) == (3, 35.0, date(2026, 1, 16))
    assert (f["position"], f["out_of_range"], f["trend"]) == ("within", False, "rising")
    assert (f["previous_value"], f["change"]) == (26.0, 9.0)
    assert f["range_pos_pct"] == pytest.approx((35 - 30) / 370 * 100)
    assert f["slope_per_30d"] == pytest.approx(15 / 14 * 30, rel=0.05)
    t = by["TSH"]
    assert (t["position"], t["out_of_range"], t["trend"]) == ("above", True, "single")
    h = by["HBsAg"]
    assert (h["position"], h["latest_value_text"], h["out_of_range"]) == (
        "not_numeric",
        "negative",
        False,
    )
    # as of an earlier date the later results do not exist yet
    early = labs.marker_summary(lab, as_of=date(2026, 1, 5))
    assert early.filter(pl.col("name") == "Ferritin")["latest_value"].to_list() == [20.0]
    assert early.filter(pl.col("name") == "Ferritin")["position"].to_list() == ["below"]


def test_trend_uses_one_unit_and_one_result_per_day():
    lab = _lab(
        [
            _r(2, 3.0, unit="mmol/L"),  # another unit: not on the same line
            _r(9, 40.0),
            _r(9, 41.0, start_utc=datetime(2026, 1, 9, 9, 0)),
            _r(16, 40.0),
        ]
    )
    f = labs.marker_summary(lab).row(0, named=True)
    assert f["unit"] == "ng/mL" and f["trend"] == "falling"
    assert f["previous_value"] == 41.0


def test_lab_flag_counts_as_out_of_range_without_bounds():
    lab = _lab([_r(2, 7.0, reference_low=None, reference_high=None, interpretation="HH")])
    assert labs.marker_summary(lab)["out_of_range"].to_list() == [True]


def test_cortisol_ratio_pairs_waking_with_the_bedtime_before():
    saliva = {"code": None, "code_system": None, "name": "Cortisol (saliva)", "unit": "nmol/L",
              "specimen": "saliva", "reference_low": None, "reference_high": None}  # fmt: skip
    lab = _lab(
        [
            _r(5, 3.0, start_utc=datetime(2026, 1, 5, 21, 45), **saliva),  # 22:45 Berlin
            _r(6, 15.0, start_utc=datetime(2026, 1, 6, 6, 5), **saliva),  # 07:05
            _r(7, 12.0, start_utc=datetime(2026, 1, 7, 6, 0), **saliva),  # no bedtime before
        ]
    )
    r = labs.cortisol_ratios(lab)
    assert r["waking_date"].to_list() == [date(2026, 1, 6)]
    assert r["waking_bedtime_ratio"].to_list() == [pytest.approx(5.0)]
    s = labs.marker_summary(lab).row(0, named=True)
    assert s["trend"] == "diurnal" and s["slope_per_30d"] is None


@pytest.mark.realdata
def test_cortisol_ratio_on_real_mmash(settings):
    for user, folder in (("u1", "user_1"), ("u2", "user_3")):
        path = shared("mmash", folder, "saliva.csv")
        ingest_paths([path], user, settings, options={"start_date": date(2017, 3, 6)})
        raw = pl.read_csv(path)
        ratios = labs.cortisol_ratios(read(settings.lake, "lab_result", [user]))
        expected = raw["Cortisol NORM"][1] / raw["Cortisol NORM"][0]  # wake up ÷ before sleep
        assert ratios["waking_bedtime_ratio"].to_list() == [pytest.approx(expected)]
    assert set(ratios["unit"]) == {"ug/100ug{protein}"}


def test_same_result_from_two_sources_is_shown_once():
    one = _lab([_r(2, 20.0)], source="fhir")
    two = _lab([_r(2, 20.0, name="Ferritin [Mass/volume] in Serum or Plasma")], "apple_health")
    both = pl.concat([one, two])
    res = resolve("lab_result", both.lazy(), ["apple_health", "fhir"]).collect()
    assert res["source"].to_list() == ["apple_health"]
    assert resolve("lab_result", one.lazy(), []).collect().height == 1


def test_markers_are_never_inputs_of_the_nightly_features(tmp_path):
    assert "lab_result" not in FEATURE_INPUTS
    people = pytest.importorskip("tunewell.synth.people")
    apple = pytest.importorskip("tunewell.synth.apple_health")
    from tunewell.settings import Settings

    pop = people.simulate(n_users=1, days=6, seed=5)
    out = {}
    for with_labs in (False, True):
        base = tmp_path / f"labs_{with_labs}"
        path = apple.write_apple(pop, pop.people[0], base / "in")
        if with_labs:
            clinical = synth_labs.apple_clinical_records(pop.nights["sleep_date"].min())
            synth_labs.add_members(path, clinical.members)
        s = Settings(lake=base / "lake", inbox=base / "in", users={"u1": USER})
        ingest_paths([path], "u1", s)
        assert read(s.lake, "lab_result", ["u1"]).height == (8 if with_labs else 0)
        refresh_gold(s, full=True)
        out[with_labs] = read(s.lake, "nightly_features", ["u1"]).sort("sleep_date")
    assert out[True].height > 0
    assert_frame_equal(out[True], out[False])
