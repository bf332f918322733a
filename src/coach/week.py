"""One person's ISO week with the history the rules, insights and pages need.

The coach layer reads gold tables only (``nightly_features``, ``daily_load``, ``scores``) plus the
``self_report`` tags; everything a sentence says is computed from these frames, so a test can
build them by hand and a page can show exactly the numbers a rule used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from tunewell.lake import store
from tunewell.lake.timezones import local_time

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
TREND_WEEKS = 8  # trend charts show up to 8 ISO weeks ending with the week
HISTORY_DAYS = 7 * TREND_WEEKS + 90  # trends plus the insight window before them


COVERAGE_SCHEMA = {"source": pl.String, "kind": pl.String, "sleep_date": pl.Date}


@dataclass(frozen=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        m = _WEEK.match(text.strip())
        if not m:
            raise ValueError(f"week {text!r} is not in YYYY-Www form (e.g. 2026-W15)")
        wk = cls(int(m.group(1)), int(m.group(2)))
        _ = wk.monday  # raises for a week number the year does not have
        return wk

    @classmethod
    def of(cls, d: date) -> IsoWeek:
        y, w, _ = d.isocalendar()
        return cls(y, w)

    @property
    def monday(self) -> date:
        try:
            return date.fromisocalendar(self.year, self.week, 1)
        except ValueError:
            raise ValueError(f"{self.year} has no ISO week {self.week}") from None

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True)
class PersonData:
    """Gold rows of one person up to the end of a week (nights keyed by sleep_date)."""

    user_id: str
    week: IsoWeek
    nights: pl.DataFrame  # nightly_features
    load: pl.DataFrame  # daily_load
    scores: pl.DataFrame  # scores (may be empty: models not run yet)
    reports: pl.DataFrame  # self_report
    # Nights each source recorded (silver, before the merge): source, kind, sleep_date.
    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=COVERAGE_SCHEMA))

    def nights_in(self, wk: IsoWeek) -> pl.DataFrame:
        return _in(self.nights, "sleep_date", wk)

    def load_in(self, wk: IsoWeek) -> pl.DataFrame:
        return _in(self.load, "date", wk)

    def scores_in(self, wk: IsoWeek) -> pl.DataFrame:
        return _in(self.scores, "sleep_date", wk)

    @property
    def has_scores(self) -> bool:
        return self.scores.height > 0

    def at(self, wk: IsoWeek) -> PersonData:
        """The same person seen at the end of an earlier week (for persistence checks)."""
        end = wk.sunday
        return PersonData(
            self.user_id,
            wk,
            self.nights.filter(pl.col("sleep_date") <= end),
            self.load.filter(pl.col("date") <= end),
            self.scores.filter(pl.col("sleep_date") <= end),
            self.reports.filter(pl.col("date") <= end),
            self.coverage.filter(pl.col("sleep_date") <= end),
        )


# What a source contributed to a night, read from silver so a device that lost the merge to a
# higher-priority one still shows up.
COVERAGE_KINDS = {"sleep_episode": "sleep", "hrv": "HRV values", "rr_interval": "beat intervals"}


def coverage(lake: Path, user_id: str, lo: date, hi: date) -> pl.DataFrame:
    """Distinct nights per source and kind (samples go to the noon-to-noon night they fall in)."""
    frames = []
    for name, kind in COVERAGE_KINDS.items():
        lf = store.scan(lake, name, [user_id])
        if name == "sleep_episode":
            night = pl.col("sleep_date")
        else:
            night = (local_time() + pl.duration(hours=12)).dt.date()
        frames.append(
            lf.select("source", night.alias("sleep_date"))
            .filter(pl.col("sleep_date").is_between(lo, hi))
            .unique()
            .with_columns(pl.lit(kind).alias("kind"))
            .select("source", "kind", "sleep_date")
            .collect()
        )
    return pl.concat(frames).sort("kind", "source", "sleep_date")


def _in(df: pl.DataFrame, col: str, wk: IsoWeek) -> pl.DataFrame:
    return df.filter(pl.col(col).is_between(wk.monday, wk.sunday)).sort(col)


def load_person(lake: Path, user_id: str, week: IsoWeek) -> PersonData:
    lo, hi = week.sunday - timedelta(days=HISTORY_DAYS), week.sunday

    def rd(name: str, col: str) -> pl.DataFrame:
        return (
            store.scan(lake, name, [user_id])
            .filter(pl.col(col).is_between(lo, hi))
            .collect()
            .sort(col)
        )

    return PersonData(
        user_id,
        week,
        rd("nightly_features", "sleep_date"),
        rd("daily_load", "date"),
        rd("scores", "sleep_date"),
        rd("self_report", "date"),
        coverage(lake, user_id, week.monday, week.sunday),
    )


def default_week(lake: Path) -> IsoWeek:
    """The latest complete ISO week with nights in the lake (else the latest week with any).

    A Monday-morning run would otherwise report on a week holding one night.
    """
    span = (
        store.scan(lake, "nightly_features")
        .select(pl.col("sleep_date").min().alias("lo"), pl.col("sleep_date").max().alias("hi"))
        .collect()
    )
    first, last = span["lo"][0], span["hi"][0]
    if last is None:
        return IsoWeek.of(date.today())
    wk = IsoWeek.of(last)
    if wk.sunday > last and wk.shift(-1).sunday >= first:
        return wk.shift(-1)
    return wk
