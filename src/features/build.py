"""Public entry points: gold ``nightly_features`` and ``daily_load`` from silver LazyFrames.

Rows cover every calendar date between a user's first and last night (missing nights are rows
with null values), so downstream baselines and reports see gaps as gaps. ``start``/``end`` select
the output range; the inputs should reach back ``LOOKBACK_DAYS`` (``load_window``) for the
rolling windows, and then the output equals a full recompute.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import polars as pl

from tunewell.features import baselines, circadian, hrv, load, sleep, vitals
from tunewell.lake.frames import conform, empty
from tunewell.lake.schemas import table
from tunewell.lake.sleep_rules import NIGHT_RULE
from tunewell.lake.timezones import local_date
from tunewell.settings import UserSettings

# Days of history a nightly row needs: baselines (7 + 60) dominate SRI/timing/IS windows, and the
# skin-temperature deviation they take a baseline of looks back another 28 nights itself.
NIGHTLY_LOOKBACK_DAYS = max(baselines.LOOKBACK_DAYS + vitals.LOOKBACK_DAYS, circadian.SJL_DAYS) + 2
LOOKBACK_DAYS = max(NIGHTLY_LOOKBACK_DAYS, load.LOOKBACK_DAYS)
# How far forward a changed date moves outputs: the longest window that includes it.
FORWARD_DAYS = LOOKBACK_DAYS


def recompute_window(changed_dates: Iterable[date]) -> tuple[date, date]:
    """Output range to recompute after ``changed_dates`` got new data.

    A change on day d alters every row whose window contains d, i.e. d .. d + FORWARD_DAYS; the
    caller loads inputs from ``load_window(start, end)[0]``.
    """
    ds = sorted(set(changed_dates))
    if not ds:
        raise ValueError("recompute_window needs at least one changed date")
    return ds[0], ds[-1] + timedelta(days=FORWARD_DAYS)


def load_window(start: date, end: date) -> tuple[date, date]:
    """Input range (local dates) that a recompute of [start, end] must read."""
    return start - timedelta(days=LOOKBACK_DAYS + 1), end


def _silver(silver: dict[str, pl.LazyFrame], name: str) -> pl.LazyFrame:
    lf = silver.get(name)
    return empty(name).lazy() if lf is None else lf  # not built when the table is there


def _users_frame(users: dict[str, UserSettings]) -> list[str]:
    return sorted(users)


def _conform_gold(df: pl.DataFrame, name: str, users: dict[str, UserSettings]) -> pl.DataFrame:
    t = table(name)
    parts = []
    for uid, part in df.partition_by("user_id", as_dict=True).items():
        u = users.get(uid[0]) or UserSettings(uid[0])
        parts.append(
            conform(
                part.drop("user_id").select(
                    [c for c in part.columns if c in t.names and c != "user_id"]
                ),
                name,
                user=u,
                source="",
                source_file="",
            )
        )
    if not parts:
        return empty(name)
    return pl.concat(parts).sort("user_id", t.time_column)


HR_COLUMNS = ("user_id", "start_utc", "end_utc", "utc_offset_min", "bpm", "context", "source")
STEPS_COLUMNS = ("user_id", "start_utc", "end_utc", "utc_offset_min", "steps")


def _add(f: pl.LazyFrame, family: pl.LazyFrame) -> pl.LazyFrame:
    return f.join(family.collect().lazy(), on=["user_id", "sleep_date"], how="left")


def build_nightly_features(
    silver: dict[str, pl.LazyFrame],
    users: dict[str, UserSettings],
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Gold ``nightly_features`` for the users in ``users`` over [start, end]."""
    ids = _users_frame(users)
    flt = pl.col("user_id").is_in(ids)
    eps = _silver(silver, "sleep_episode").filter(flt)
    stages = _silver(silver, "sleep_stage").filter(flt)
    # Materialised once: every family below joins on the nights and would otherwise re-plan them.
    night = sleep.nightly_sleep(eps, stages).collect().lazy()
    main = night.filter(pl.col("episode_id").is_not_null()).collect().lazy()
    spine = baselines.date_spine(night).collect().lazy()
    rr, dev_hrv = _silver(silver, "rr_interval").filter(flt), _silver(silver, "hrv").filter(flt)
    vit = _silver(silver, "vitals").filter(flt)
    f = spine.join(night, on=["user_id", "sleep_date"], how="left")
    # One family at a time, each reduced to a row per night before the next starts: their
    # sample-level intermediates (beats, HR samples, minutes) never sit in memory together.
    # The beats (the largest input) go first, before the HR samples and steps are held.
    f = _add(f, hrv.nightly_hrv(rr, dev_hrv, main))
    f = _add(f, vitals.nightly_vitals(vit, main))
    f = _add(f, circadian.timing(main))
    # Four families read the HR samples and two the steps: decoded once, only the columns
    # they use, and dropped when the last of them is done.
    hr = _silver(silver, "heart_rate").filter(flt).select(HR_COLUMNS).collect().lazy()
    steps = _silver(silver, "steps").filter(flt).select(STEPS_COLUMNS).collect().lazy()
    f = _add(f, hrv.nightly_hr(hr, vit, main))
    f = _add(f, vitals.day_hr(hr, _silver(silver, "workout").filter(flt)))
    wear = circadian.wear_intervals(eps, steps, hr)
    f = _add(f, circadian.sri(sleep.sleep_intervals(eps, stages), wear, main))
    f = _add(f, circadian.rest_activity_any(steps, hr, spine))
    del hr, steps, wear
    dip_ok = pl.col("hr_day_ok").fill_null(False) & pl.col("hr_ok").fill_null(False)
    f = f.with_columns(
        pl.when(dip_ok).then(vitals.hr_dip_pct()).alias("hr_dip_pct"), dip_ok.alias("hr_dip_ok")
    )
    f = f.collect().lazy()
    f = f.join(baselines.baselines(f), on=["user_id", "sleep_date"], how="left")
    f = f.with_columns(
        pl.col("night_rule").fill_null(NIGHT_RULE),
        pl.col("nap_count").fill_null(0),
        pl.col("nap_min").fill_null(0.0),
        pl.col("hrv_n_windows").fill_null(0),
        pl.col("hrv_ok").fill_null(False),
        pl.col("hr_ok").fill_null(False),
        pl.col("resp_rate_ok").fill_null(False),
        pl.col("skin_temp_dev_ok").fill_null(False),
        pl.col("spo2_ok").fill_null(False),
        pl.col("hr_day_ok").fill_null(False),
        pl.col("sri_n_pairs").fill_null(0),
        pl.col("timing_n_nights").fill_null(0),
        pl.col("rar_n_days").fill_null(0),
        pl.col("episode_id").is_not_null().alias("sleep_ok"),
        (pl.col("sri").is_not_null()).alias("sri_ok"),
        (pl.col("rar_is").is_not_null()).alias("rar_ok"),
    )
    if start is not None:
        f = f.filter(pl.col("sleep_date") >= start)
    if end is not None:
        f = f.filter(pl.col("sleep_date") <= end)
    return _conform_gold(f.collect(), "nightly_features", users)


# Load runs to the last day the person wore anything, not the last workout: a rest week is
# exactly when falling ATL and rising TSB matter.
WORN_TABLES = ("sleep_episode", "heart_rate", "steps")


def load_span(silver: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    """Per user, the first workout's and the last worn day's local dates: the calendar that
    ``daily_load`` has a row for every day of (user_id, first_day, last_day)."""
    first = (
        _silver(silver, "workout").group_by("user_id").agg(local_date().min().alias("first_day"))
    )
    worn = [
        _silver(silver, name).select("user_id", local_date().alias("last_day"))
        for name in WORN_TABLES
    ]
    last = pl.concat(worn).group_by("user_id").agg(pl.col("last_day").max())
    return first.join(last, on="user_id", how="left")


def build_daily_load(
    silver: dict[str, pl.LazyFrame],
    users: dict[str, UserSettings],
    start: date | None = None,
    end: date | None = None,
    span: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Gold ``daily_load`` for the users in ``users`` over [start, end].

    ``span`` (``load_span`` of the whole history) fixes each person's calendar when ``silver``
    holds only a window of it: the rows then do not depend on where a window or chunk begins.
    """
    flt = pl.col("user_id").is_in(_users_frame(users))
    sp = (load_span(silver) if span is None else span.lazy()).filter(flt)
    # The calendar is clipped to the rows asked for (plus the lookback their windows read), so
    # a chunk of a long history builds its own days, not every day since the first workout.
    if start is not None:
        lo = pl.lit(load_window(start, start)[0])
        sp = sp.with_columns(
            pl.when(pl.col("first_day").is_not_null())
            .then(pl.max_horizontal("first_day", lo))
            .alias("first_day")
        )
    if end is not None:
        sp = sp.with_columns(
            pl.when(pl.col("last_day").is_not_null())
            .then(pl.min_horizontal("last_day", end))
            .alias("last_day")
        )
    d = load.daily_load(
        _silver(silver, "workout").filter(flt),
        _silver(silver, "heart_rate").filter(flt),
        users,
        sp,
    )
    if start is not None:
        d = d.filter(pl.col("date") >= start)
    if end is not None:
        d = d.filter(pl.col("date") <= end)
    return _conform_gold(d.collect(), "daily_load", users)
