"""Sleep per night: hand-computed nights, across midnight, DST, naps and stage-less episodes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from tunewell.features.sleep import NIGHT_RULE, nightly_sleep
from tunewell.lake.frames import conform
from tunewell.settings import UserSettings

BERLIN = UserSettings("u1", tz="Europe/Berlin")


def make_night(
    user: UserSettings,
    start_local: datetime,
    stages: list[tuple[str, float]],
    source: str = "oura",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One episode from a local start and consecutive (stage, minutes); returns episode, stages."""
    tz = ZoneInfo(user.tz)
    t0 = start_local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
    starts, ends, names = [], [], []
    t = t0
    for name, m in stages:
        starts.append(t)
        t = t + timedelta(minutes=m)
        ends.append(t)
        names.append(name)
    wake_local = t.astimezone(tz)
    ep = conform(
        pl.DataFrame({"start_utc": [t0], "end_utc": [t], "sleep_date": [wake_local.date()]}),
        "sleep_episode",
        user=user,
        source=source,
        source_file="f",
    )
    st = conform(
        pl.DataFrame({"start_utc": starts, "end_utc": ends, "stage": names}).with_columns(
            pl.lit(ep["record_id"][0]).alias("episode_id")
        ),
        "sleep_stage",
        user=user,
        source=source,
        source_file="f",
    )
    return ep, st


def run(pairs: list[tuple[pl.DataFrame, pl.DataFrame]]) -> pl.DataFrame:
    eps = pl.concat([p[0] for p in pairs])
    st = pl.concat([p[1] for p in pairs])
    return nightly_sleep(eps.lazy(), st.lazy()).collect()


def test_night_across_midnight_hand_computed() -> None:
    # 23:00 in bed, SOL 20; a 10-min wake bout counts as an awakening, a 3-min one does not;
    # the 7 min awake after the final awakening are neither TST nor WASO.
    stages = [
        ("awake", 20),
        ("light", 100),
        ("deep", 60),
        ("awake", 10),
        ("light", 30),
        ("awake", 3),
        ("rem", 90),
        ("light", 120),
        ("awake", 7),
    ]
    r = run([make_night(BERLIN, datetime(2026, 1, 14, 23, 0), stages)]).row(0, named=True)
    assert r["sleep_date"] == date(2026, 1, 15)
    assert r["tib_min"] == pytest.approx(440)
    assert r["tst_min"] == pytest.approx(400)
    assert r["sol_min"] == pytest.approx(20)
    assert r["waso_min"] == pytest.approx(13)
    assert r["awakenings"] == 1
    assert r["efficiency_pct"] == pytest.approx(400 / 440 * 100)
    assert r["deep_min"] == pytest.approx(60) and r["rem_min"] == pytest.approx(90)
    assert r["light_pct"] == pytest.approx(250 / 400 * 100)
    assert r["onset_h"] == pytest.approx(23 + 20 / 60)
    # final awakening 23:20 + 413 min = 06:13 on the sleep date -> 30.2167
    assert r["offset_h"] == pytest.approx(30 + 13 / 60)
    assert r["midpoint_h"] == pytest.approx((23 + 20 / 60 + 30 + 13 / 60) / 2)
    assert r["night_rule"] == NIGHT_RULE and r["nap_count"] == 0


def test_dst_spring_forward_night() -> None:
    # Europe/Berlin 2026-03-29 02:00 CET -> 03:00 CEST. In bed 23:00 CET, asleep 23:00 .. 07:00
    # CEST local = 7 real hours (420 UTC minutes), all light.
    ep, st = make_night(BERLIN, datetime(2026, 3, 28, 23, 0), [("light", 420)])
    r = run([(ep, st)]).row(0, named=True)
    assert r["sleep_date"] == date(2026, 3, 29)
    assert r["tst_min"] == pytest.approx(420)
    assert r["onset_h"] == pytest.approx(23.0)
    # wake-up 05:00 UTC; the only stage started in CET (+60), so the wake clock is taken from it.
    # Offsets come from stage starts: a stage starting after the switch carries +120.
    ep2, st2 = make_night(BERLIN, datetime(2026, 3, 28, 23, 0), [("light", 180), ("deep", 240)])
    r2 = run([(ep2, st2)]).row(0, named=True)
    assert r2["tst_min"] == pytest.approx(420)
    assert r2["offset_h"] == pytest.approx(24 + 7.0)  # 05:00 UTC + 120 = 07:00 CEST
    # midpoint 01:30 UTC falls in the second stage (started 01:00 UTC, CEST): 03:30 local
    assert r2["midpoint_h"] == pytest.approx(24 + 3.5)


def test_main_sleep_and_naps() -> None:
    night = make_night(BERLIN, datetime(2026, 1, 14, 23, 0), [("light", 420)])
    nap = make_night(BERLIN, datetime(2026, 1, 15, 14, 0), [("awake", 5), ("light", 40)])
    morning = make_night(BERLIN, datetime(2026, 1, 15, 9, 0), [("light", 30)])
    out = run([night, nap, morning])
    assert out.height == 1
    r = out.row(0, named=True)
    assert r["tst_min"] == pytest.approx(420)
    assert r["episode_id"] == night[0]["record_id"][0]
    assert r["nap_count"] == 2
    assert r["nap_min"] == pytest.approx(70)


def test_episode_without_stages_uses_vendor_summary() -> None:
    u = UserSettings("u2", tz="America/New_York")
    ep = conform(
        pl.DataFrame(
            {
                "start_utc": [datetime(2026, 1, 15, 4, 0)],
                "end_utc": [datetime(2026, 1, 15, 12, 0)],
                "sleep_date": [date(2026, 1, 15)],
                "tst_min": [430.0],
                "sol_min": [15.0],
            }
        ),
        "sleep_episode",
        user=u,
        source="whoop",
        source_file="f",
    )
    st = conform(
        pl.DataFrame(
            {"start_utc": [], "end_utc": [], "stage": []},
            schema={
                "start_utc": pl.Datetime("us", "UTC"),
                "end_utc": pl.Datetime("us", "UTC"),
                "stage": pl.String,
            },
        ),
        "sleep_stage",
        user=u,
        source="whoop",
        source_file="f",
    )
    r = nightly_sleep(ep.lazy(), st.lazy()).collect().row(0, named=True)
    assert r["sleep_from_stages"] is False
    assert r["tst_min"] == pytest.approx(430)
    assert r["efficiency_pct"] == pytest.approx(430 / 480 * 100)
    assert r["deep_min"] is None
    assert r["onset_h"] == pytest.approx(23.25)  # 04:15 UTC = 23:15 EST
