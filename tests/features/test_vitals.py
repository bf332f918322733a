"""Nightly vitals: respiratory rate, skin-temperature deviation, SpO2, daytime HR and HR dip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tunewell.features import vitals
from tunewell.features.build import build_nightly_features
from tunewell.lake.frames import conform
from tunewell.settings import UserSettings
from tunewell.synth import people
from tunewell.synth.people import simulate
from tunewell.synth.silver import silver_from_population, users_of

U = UserSettings("u1", tz="Europe/Berlin")
D0 = date(2026, 1, 5)  # winter: Berlin is UTC+1
NIGHTS = 40


def _utc(d: date, hour: float) -> datetime:
    """Local Berlin (UTC+1 in January) clock time on day ``d`` as UTC."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=hour - 1)


def _c(name: str, rows: dict, source: str = "dev") -> pl.DataFrame:
    return conform(pl.DataFrame(rows), name, user=U, source=source, source_file="f")


def _episodes(n: int = NIGHTS) -> pl.DataFrame:
    """Main sleeps 23:00 (local, evening before) .. 07:00 of each sleep date."""
    ds = [D0 + timedelta(days=i) for i in range(n)]
    return _c(
        "sleep_episode",
        {
            "start_utc": [_utc(d, -1) for d in ds],
            "end_utc": [_utc(d, 7) for d in ds],
            "sleep_date": ds,
            "is_main_sleep": [True] * n,
        },
    )


def _hr(day_bpm: float = 70.0, sleep_bpm: float = 56.0, n: int = NIGHTS, day_to: float = 20.0):
    """Minute HR: ``day_bpm`` from 08:00 to ``day_to`` the day before, ``sleep_bpm`` in bed."""
    t, v = [], []
    for i in range(n):
        d = D0 + timedelta(days=i)
        prev = d - timedelta(days=1)
        for m in range(int((day_to - 8) * 60)):
            t.append(_utc(prev, 8 + m / 60))
            v.append(day_bpm)
        for m in range(8 * 60):
            t.append(_utc(d, -1 + m / 60))
            v.append(sleep_bpm)
    return _c("heart_rate", {"start_utc": t, "bpm": v, "context": ["sample"] * len(t)})


def _vitals(rows: list[tuple[datetime, datetime | None, str, float]], source: str = "dev"):
    return _c(
        "vitals",
        {
            "start_utc": [r[0] for r in rows],
            "end_utc": pl.Series([r[1] for r in rows], dtype=pl.Datetime("us", "UTC")),
            "metric": [r[2] for r in rows],
            "value": [r[3] for r in rows],
        },
        source,
    )


def _build(**tables: pl.DataFrame) -> pl.DataFrame:
    silver = {"sleep_episode": _episodes(), **tables}
    return build_nightly_features({k: v.lazy() for k, v in silver.items()}, {"u1": U})


def _night(nf: pl.DataFrame, i: int) -> dict:
    return nf.filter(pl.col("sleep_date") == D0 + timedelta(days=i)).row(0, named=True)


def test_without_vitals_every_value_is_null_and_flagged() -> None:
    nf = _build()
    assert nf.height == NIGHTS
    for c in ("resp_rate", "skin_temp_dev", "spo2_pct", "hr_day_mean", "hr_dip_pct"):
        assert nf[c].is_null().all(), c
    for c in ("resp_rate_source", "skin_temp_dev_source", "spo2_source"):
        assert nf[c].is_null().all(), c
    for c in ("resp_rate_ok", "skin_temp_dev_ok", "spo2_ok", "hr_day_ok", "hr_dip_ok"):
        assert nf[c].dtype == pl.Boolean and not nf[c].any(), c
    assert nf["resp_rate_calibrating"].all() and (nf["skin_temp_dev_n60"] == 0).all()


def test_resp_rate_counts_only_the_main_sleep() -> None:
    d = D0 + timedelta(days=3)
    rows = [(_utc(d, -0.5 + k), None, "respiration_rate", 14.0 + k % 2) for k in range(7)]
    rows += [(_utc(d, 15), None, "respiration_rate", 22.0)]  # afternoon: not a sleep value
    d2 = D0 + timedelta(days=4)
    rows += [(_utc(d2, 1), None, "respiration_rate", 15.0)]  # two samples: a value, not ok
    rows += [(_utc(d2, 2), None, "respiration_rate", 17.0)]
    nf = _build(vitals=_vitals(rows, "garmin_fit"))
    n3 = _night(nf, 3)
    assert n3["resp_rate"] == pytest.approx(np.mean([14.0 + k % 2 for k in range(7)]))
    assert n3["resp_rate_ok"] and n3["resp_rate_source"] == "garmin_fit:respiration_rate"
    n4 = _night(nf, 4)
    assert n4["resp_rate"] == pytest.approx(16.0) and not n4["resp_rate_ok"]
    # the afternoon of day 3 is the day before night 4, and never lands anywhere
    assert nf["resp_rate"].drop_nulls().to_list() == [n3["resp_rate"], 16.0]


def test_vendor_nightly_values_and_date_level_summaries() -> None:
    d = D0 + timedelta(days=2)
    # WHOOP-like: one value stamped at sleep onset (before local midnight), spanning the sleep
    rows = [
        (_utc(d, -1), _utc(d, 7), "respiration_rate", 15.2),
        (_utc(d, -1), _utc(d, 7), "spo2", 95.5),
    ]
    # Fitbit-like daily SpO2 and breathing rate for another date: local midnight .. +1 day
    e = D0 + timedelta(days=5)
    rows += [(_utc(e, 0), _utc(e, 24), "spo2", 97.0)]
    rows += [(_utc(e, 8), _utc(e, 24), "respiration_rate", 13.0)]
    # a short daytime reading on a date without in-sleep values is not a night summary
    f = D0 + timedelta(days=8)
    rows += [(_utc(f, 12), _utc(f, 12.1), "spo2", 91.0)]
    nf = _build(vitals=_vitals(rows, "whoop"))
    n2 = _night(nf, 2)
    assert (n2["resp_rate"], n2["spo2_pct"]) == (15.2, 95.5)
    assert n2["resp_rate_ok"] and n2["spo2_ok"] and n2["spo2_source"] == "whoop:spo2"
    n5 = _night(nf, 5)
    assert n5["spo2_pct"] == 97.0 and n5["spo2_ok"]
    # SpO2 at local midnight lies inside the 23:00-07:00 sleep; the breathing rate stamped
    # after it is a date-level summary (>= 12 h) and fills the night
    assert n5["resp_rate"] == 13.0 and n5["resp_rate_ok"]
    assert _night(nf, 8)["spo2_pct"] is None and not _night(nf, 8)["spo2_ok"]


def test_skin_temp_vendor_deviation_is_used_as_exported() -> None:
    rows = [
        (_utc(D0 + timedelta(days=i), 0), None, "temperature_deviation", 0.1 * i) for i in (1, 2)
    ]
    rows += [(_utc(D0 + timedelta(days=2), 2), None, "skin_temp", 40.0)]  # absolute loses
    nf = _build(vitals=_vitals(rows, "oura"))
    assert _night(nf, 1)["skin_temp_dev"] == pytest.approx(0.1)
    n2 = _night(nf, 2)
    assert n2["skin_temp_dev"] == pytest.approx(0.2) and n2["skin_temp_dev_ok"]
    assert n2["skin_temp_dev_source"] == "oura:temperature_deviation"


def test_absolute_skin_temp_deviates_from_own_prior_nights_causally() -> None:
    rng = np.random.default_rng(3)
    temps = 33.5 + rng.normal(0, 0.2, NIGHTS)
    ds = [D0 + timedelta(days=i) for i in range(NIGHTS)]
    rows = [(_utc(d, 1), _utc(d, 6), "skin_temp", float(t)) for d, t in zip(ds, temps, strict=True)]
    nf = _build(vitals=_vitals(rows, "apple_health"))
    # fewer than 7 earlier nights: no reference yet
    first = nf.filter(pl.col("sleep_date") < D0 + timedelta(days=vitals.TEMP_REF_MIN))
    assert first["skin_temp_dev"].is_null().all() and not first["skin_temp_dev_ok"].any()
    assert (first["skin_temp_dev_source"] == "apple_health:skin_temp").all()
    for i in (7, 20, 35):
        ref = np.median(temps[max(0, i - vitals.TEMP_REF_DAYS) : i])
        assert _night(nf, i)["skin_temp_dev"] == pytest.approx(temps[i] - ref), i
        assert _night(nf, i)["skin_temp_dev_ok"]
    # a change on the last night moves nothing before it (causal), only that night
    rows2 = [*rows[:-1], (rows[-1][0], rows[-1][1], "skin_temp", 39.0)]
    nf2 = _build(vitals=_vitals(rows2, "apple_health"))
    cols = ["skin_temp_dev", "skin_temp_dev_b7", "skin_temp_dev_mu60", "skin_temp_dev_z"]
    early = pl.col("sleep_date") < ds[-1]
    assert_frame_equal(nf.filter(early).select(cols), nf2.filter(early).select(cols))
    assert _night(nf2, NIGHTS - 1)["skin_temp_dev"] > 5


def test_two_devices_keep_their_own_reference() -> None:
    ds = [D0 + timedelta(days=i) for i in range(NIGHTS)]
    whoop = [(_utc(d, -1), _utc(d, 7), "skin_temp", 33.0) for d in ds[:20]]
    apple = [(_utc(d, 1), _utc(d, 6), "skin_temp", 35.5) for d in ds[20:]]
    nf = _build(vitals=pl.concat([_vitals(whoop, "whoop"), _vitals(apple, "apple_health")]))
    # the switch to a warmer sensor is not a 2.5 °C fever: Apple needs its own 7 nights
    switch = nf.filter(pl.col("sleep_date").is_between(ds[20], ds[26]))
    assert switch["skin_temp_dev"].is_null().all()
    later = nf.filter(pl.col("sleep_date") >= ds[27])
    assert later["skin_temp_dev"].abs().max() < 1e-9


def test_hr_dip_formula_and_daytime_window() -> None:
    nf = _build(heart_rate=_hr(70.0, 56.0))
    n = _night(nf, 5)
    assert n["hr_day_mean"] == pytest.approx(70.0) and n["hr_sleep_mean"] == pytest.approx(56.0)
    assert n["hr_dip_pct"] == pytest.approx((70 - 56) / 70 * 100) and n["hr_dip_ok"]
    assert n["hr_day_ok"] and n["hr_day_source"] == "dev"
    # the first night has its day before it in the data as well
    assert _night(nf, 0)["hr_dip_ok"]
    # 10:00-14:55 is 59 five-minute bins: not enough daytime
    short = _build(heart_rate=_hr(70.0, 56.0, day_to=14 + 55 / 60))
    s = _night(short, 5)
    assert s["hr_day_mean"] is None and not s["hr_day_ok"]
    assert s["hr_dip_pct"] is None and not s["hr_dip_ok"] and s["hr_ok"]
    enough = _build(heart_rate=_hr(70.0, 56.0, day_to=15.0))
    assert _night(enough, 5)["hr_day_ok"]


def test_daytime_hr_leaves_out_workouts_and_the_hours_outside_the_window() -> None:
    hr = _hr(70.0, 56.0)
    d = D0 + timedelta(days=5)
    prev = d - timedelta(days=1)
    extra = _c(
        "heart_rate",
        {
            "start_utc": [_utc(prev, 21 + m / 60) for m in range(60)],  # after 20:00
            "bpm": [120.0] * 60,
            "context": ["sample"] * 60,
        },
    )
    w0, w1 = _utc(prev, 12), _utc(prev, 13)
    hr = pl.concat([hr.filter(~pl.col("start_utc").is_between(w0, w1, closed="left")), extra])
    run = _c(
        "heart_rate",
        {
            "start_utc": [w0 + timedelta(minutes=m) for m in range(60)],
            "bpm": [160.0] * 60,
            "context": ["sample"] * 60,
        },
    )
    wk = _c("workout", {"start_utc": [w0], "end_utc": [w1], "activity": ["running"]})
    nf = _build(heart_rate=pl.concat([hr, run]), workout=wk)
    assert _night(nf, 5)["hr_day_mean"] == pytest.approx(70.0)
    no_wk = _build(heart_rate=pl.concat([hr, run]))
    assert _night(no_wk, 5)["hr_day_mean"] > 75


@pytest.fixture(scope="module")
def planted():
    pop = simulate(n_users=2, days=100, seed=11)
    users = users_of(pop)
    nf = build_nightly_features(silver_from_population(pop, users), users)
    truth = pop.nights.select(
        "user_id",
        "sleep_date",
        "hard_day_before",
        pl.col("resp_rate").alias("resp_true"),
        pl.col("skin_temp_dev").alias("temp_true"),
        pl.col("spo2_pct").alias("spo2_true"),
    )
    return nf.join(truth, on=["user_id", "sleep_date"])


def test_planted_vitals_are_recovered(planted) -> None:
    j = planted
    assert j.height > 190
    np.testing.assert_allclose(j["resp_rate"], j["resp_true"], atol=1e-9)
    np.testing.assert_allclose(j["spo2_pct"], j["spo2_true"], atol=1e-9)
    assert j["resp_rate_ok"].all() and j["spo2_ok"].all() and j["hr_dip_ok"].mean() > 0.95
    t = j.filter(pl.col("skin_temp_dev_ok"))
    assert t.height > 180
    # own-median deviation tracks the planted one up to the person's (constant) offset
    assert (t["skin_temp_dev"] - t["temp_true"]).std() < 0.08


def test_hard_days_raise_resp_and_temp_and_lower_the_dip(planted) -> None:
    j = planted.filter(~pl.col("resp_rate_calibrating"))
    hard, easy = j.filter(pl.col("hard_day_before")), j.filter(~pl.col("hard_day_before"))
    d_resp = hard["resp_rate"].mean() - easy["resp_rate"].mean()
    d_temp = hard["skin_temp_dev"].mean() - easy["skin_temp_dev"].mean()
    assert d_resp == pytest.approx(people.HARD_DAY_RESP, abs=0.25)
    assert d_temp == pytest.approx(people.HARD_DAY_TEMP, abs=0.1)
    assert hard["resp_rate_z"].mean() > 0.5 > easy["resp_rate_z"].mean()
    assert hard["skin_temp_dev_z"].mean() > 0.5 > easy["skin_temp_dev_z"].mean()
    assert hard["hr_dip_pct_z"].mean() < 0 < easy["hr_dip_pct_z"].mean()


def test_vitals_baselines_follow_the_baseline_rules(planted) -> None:
    j = planted.sort("user_id", "sleep_date")
    for s in ("resp_rate", "skin_temp_dev", "hr_dip_pct"):
        late = j.filter(pl.col(f"{s}_n60") >= 14)
        assert late.height > 100 and not late[f"{s}_calibrating"].any()
        z = (late[s] - late[f"{s}_mu60"]) / late[f"{s}_sd60"]
        np.testing.assert_allclose(late[f"{s}_z"], z, rtol=1e-9)
        np.testing.assert_allclose(late[f"{s}_swc"], 0.5 * late[f"{s}_sd60"], rtol=1e-12)
        assert j.filter(pl.col(f"{s}_n60") < 14)[f"{s}_calibrating"].all()


def test_two_devices_on_one_night_resolve_to_the_priority_source() -> None:
    """A ring and a watch both measure breathing: the lake's per-day source priority keeps one,
    so the night's value is the ring's and names it (never an average of two devices)."""
    from tunewell.lake.merge import resolve_silver
    from tunewell.settings import DEFAULT_PRIORITY

    d = D0 + timedelta(days=4)
    ring = _vitals([(_utc(d, 1), _utc(d, 6), "respiration_rate", 14.0)], "oura")
    watch = _vitals(
        [(_utc(d, 1 + k / 2), None, "respiration_rate", 18.0) for k in range(8)], "apple_health"
    )
    silver = {"sleep_episode": _episodes(), "vitals": pl.concat([ring, watch])}
    resolved, _ = resolve_silver({k: v.lazy() for k, v in silver.items()}, DEFAULT_PRIORITY)
    n = _night(build_nightly_features(resolved, {"u1": U}), 4)
    assert (n["resp_rate"], n["resp_rate_source"], n["resp_rate_ok"]) == (
        14.0,
        "oura:respiration_rate",
        True,
    )
