"""HRV: RR cleaning, 5-min window formulas, nightly RMSSD, device fallback, real RR check."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tests.conftest import shared
from tunewell.features.hrv import clean_mask, nightly_hrv, time_domain
from tunewell.lake.frames import conform
from tunewell.settings import UserSettings

U = UserSettings("u1", tz="Europe/Berlin")


def test_clean_mask_compares_with_previous_kept_beat() -> None:
    rr = np.array([800, 1000, 810, 250, 820, 2100, 990, 1000, 830], dtype=float)
    seg = np.zeros(rr.size, dtype=bool)
    seg[0] = True
    # 1000 vs 800: +25 % -> drop; 810 vs 800 keep; 250 range; 820 keep; 2100 range;
    # 990 vs 820: +20.7 % -> drop; 1000 vs 820 -> drop (a raw-neighbour rule would keep it);
    # 830 keep.
    assert clean_mask(rr, seg).tolist() == [1, 0, 1, 0, 1, 0, 0, 0, 1]
    seg[6] = True  # a recording break re-anchors the reference: 990, 1000, 830 (-17 %) kept
    assert clean_mask(rr, seg).tolist() == [1, 0, 1, 0, 1, 0, 1, 1, 1]


def _reference_mask(rr: np.ndarray, seg: np.ndarray) -> list[bool]:
    """The rule written as the plain sequential loop it is defined by."""
    keep, ref = [], None
    for r, s in zip(rr.tolist(), seg.tolist(), strict=True):
        if s:
            ref = None
        ok = 300 <= r <= 2000 and (ref is None or abs(r - ref) <= 0.2 * ref)
        keep.append(ok)
        if ok:
            ref = r
    return keep


def test_clean_mask_equals_the_sequential_rule_on_artefact_runs() -> None:
    rng = np.random.default_rng(5)
    rr = rng.normal(900, 40, 20_000)
    idx = rng.choice(rr.size, 1500, replace=False)
    rr[idx] = rng.choice([250.0, 2500.0, 450.0, 1400.0, 1150.0], idx.size)  # artefacts, runs
    rr[5000:5030] = 1300.0  # a long shifted run: the reference stays at the last good beat
    seg = rng.random(rr.size) < 0.002
    seg[0] = True
    got = clean_mask(rr, seg)
    assert got.tolist() == _reference_mask(rr, seg)
    assert 0.85 < got.mean() < 0.95


def test_time_domain_by_hand() -> None:
    rr = [800.0, 860.0, 790.0, 850.0]
    t0 = datetime(2026, 1, 1)
    df = pl.LazyFrame(
        {"g": [1] * 4, "start_utc": [t0 + timedelta(seconds=i) for i in range(4)], "rr_ms": rr}
    )
    r = time_domain(df, ["g"]).collect().row(0, named=True)
    d = np.diff(rr)  # 60, -70, 60
    assert r["rmssd_ms"] == pytest.approx(math.sqrt(np.mean(d**2)))
    assert r["sdnn_ms"] == pytest.approx(np.std(rr, ddof=1))
    assert r["mean_hr"] == pytest.approx(60000 / np.mean(rr))
    assert r["pnn50"] == pytest.approx(100.0)


def _main(start: datetime, hours: float) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "user_id": ["u1"],
            "sleep_date": [date(2026, 1, 15)],
            "episode_start_utc": [start],
            "episode_end_utc": [start + timedelta(hours=hours)],
        },
        schema_overrides={
            "episode_start_utc": pl.Datetime("us", "UTC"),
            "episode_end_utc": pl.Datetime("us", "UTC"),
        },
    )


def _beats(start: datetime, rr: np.ndarray) -> pl.LazyFrame:
    t = [start + timedelta(milliseconds=float(x)) for x in np.cumsum(rr)]
    return conform(
        pl.DataFrame({"start_utc": t, "rr_ms": rr}),
        "rr_interval",
        user=U,
        source="polar",
        source_file="f",
    ).lazy()


def test_nightly_rmssd_is_median_of_valid_windows() -> None:
    start = datetime(2026, 1, 14, 23, 0, tzinfo=None)
    # Alternating 1000/1040 ms beats: every window has RMSSD 40 exactly; 2 h -> 24 windows.
    rr = np.tile([1000.0, 1040.0], 3600)
    beats = _beats(start, rr)
    hrv = conform(
        pl.DataFrame(
            schema={
                "start_utc": pl.Datetime("us", "UTC"),
                "metric": pl.String,
                "window": pl.String,
                "value_ms": pl.Float64,
            }
        ),
        "hrv",
        user=U,
        source="x",
        source_file="f",
    ).lazy()
    main = _main(start.replace(tzinfo=None), 2.0).with_columns(
        pl.col("episode_start_utc").dt.replace_time_zone(None).dt.replace_time_zone("UTC")
    )
    r = nightly_hrv(beats, hrv, main).collect().row(0, named=True)
    assert r["rmssd_ms"] == pytest.approx(40.0)
    assert r["ln_rmssd"] == pytest.approx(math.log(40.0))
    assert r["hrv_source"] == "rr" and r["rmssd_window"] == "nightly"
    assert r["hrv_n_windows"] >= 22  # the last window is cut by the episode end
    assert r["rr_kept_fraction"] == pytest.approx(1.0)


def test_device_fallback_keeps_its_window_and_never_mixes_sdnn() -> None:
    start = datetime(2026, 1, 14, 23, 0)
    rr = conform(
        pl.DataFrame(schema={"start_utc": pl.Datetime("us", "UTC"), "rr_ms": pl.Float64}),
        "rr_interval",
        user=U,
        source="x",
        source_file="f",
    ).lazy()
    hrv = conform(
        pl.DataFrame(
            {
                "start_utc": [start + timedelta(hours=5), start + timedelta(hours=1)],
                "metric": ["rmssd", "sdnn"],
                "window": ["last_sws", "spot"],
                "value_ms": [55.0, 70.0],
            }
        ),
        "hrv",
        user=U,
        source="whoop",
        source_file="f",
    ).lazy()
    r = nightly_hrv(rr, hrv, _main(start, 7.5)).collect().row(0, named=True)
    assert r["rmssd_ms"] == 55.0 and r["rmssd_window"] == "last_sws"
    assert r["hrv_source"] == "device"
    assert r["sdnn_ms"] == 70.0 and r["sdnn_window"] == "spot"


def _hrvanalysis_time_domain():
    """hrv-analysis imports nolds, whose bundled datasets fail to load on Python 3.11
    (``importlib.resources.files`` on a module); time-domain features never touch nolds, so an
    empty stand-in lets the real hrv-analysis code run."""
    import sys
    import types

    try:
        from hrvanalysis import get_time_domain_features
    except TypeError:
        for name in [
            m for m in sys.modules if m == "nolds" or m.startswith(("nolds.", "hrvanalysis"))
        ]:
            del sys.modules[name]
        sys.modules["nolds"] = types.ModuleType("nolds")
        from hrvanalysis import get_time_domain_features

        del sys.modules["nolds"]  # only hrv-analysis holds the stand-in
    return get_time_domain_features


@pytest.mark.realdata
@pytest.mark.parametrize("user", ["user_1", "user_4", "user_7"])
def test_mmash_rr_matches_hrvanalysis(user: str) -> None:
    get_time_domain_features = _hrvanalysis_time_domain()

    raw = pl.read_csv(shared("mmash", user, "RR.csv"))
    t = (
        pl.datetime(2020, 1, 1)
        + pl.duration(days=pl.col("day") - 1)
        + pl.col("time").str.to_time("%H:%M:%S").cast(pl.Duration("us"))
    )
    rr = raw.select(t.alias("start_utc"), (pl.col("ibi_s") * 1000).alias("rr_ms"))
    rr = rr.filter(pl.col("start_utc").is_not_null())
    seg = np.zeros(rr.height, dtype=bool)
    seg[0] = True
    keep = clean_mask(rr["rr_ms"].to_numpy(), seg)
    kept = rr.filter(pl.Series(keep)).with_columns(pl.lit(1).alias("g"))
    assert 0.5 < keep.mean() < 1.0  # real artefacts are dropped, most beats survive
    ours = time_domain(kept.lazy(), ["g"]).collect().row(0, named=True)
    ref = get_time_domain_features(kept["rr_ms"].to_list())
    assert ours["rmssd_ms"] == pytest.approx(ref["rmssd"], rel=0.01)
    assert ours["sdnn_ms"] == pytest.approx(ref["sdnn"], rel=0.01)
    # and window by window on the first hour's 5-min windows
    w = kept.head(4000).with_columns(pl.col("start_utc").dt.truncate("5m").alias("w"))
    mine = time_domain(w.lazy(), ["w"]).collect().sort("w")
    for win, part in w.group_by("w", maintain_order=True):
        if part.height < 30:
            continue
        ref_w = get_time_domain_features(part["rr_ms"].to_list())
        got = mine.filter(pl.col("w") == win[0]).row(0, named=True)
        assert got["rmssd_ms"] == pytest.approx(ref_w["rmssd"], rel=0.01)
        assert got["sdnn_ms"] == pytest.approx(ref_w["sdnn"], rel=0.01)
