"""Local offsets for synthetic records, decided by the same rule the lake uses.

Writers stamp local times (FIT ``local_timestamp``, Apple ``+0100`` suffixes, Fitbit local clock
strings) from the person's zone history; going through ``tunewell.lake.timezones`` guarantees the
files and the lake's user-setting fallback agree on every instant, including DST and travel days.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tunewell.lake.timezones import zone_offsets
from tunewell.settings import UserSettings, ZonePeriod
from tunewell.synth.people import Person, Population


def user_settings(pop: Population, person: Person) -> UserSettings:
    hist = tuple(ZonePeriod(since, tz) for since, tz in pop.tz_history.get(person.user_id, []))
    return UserSettings(
        user_id=person.user_id,
        tz=person.tz_home,
        tz_history=hist,
        sex=person.sex,
        hr_max=person.hr_max,
        hr_rest=person.rhr_base,
    )


def offsets_min(user: UserSettings, utc_s: np.ndarray) -> np.ndarray:
    """UTC offset in minutes at each UTC epoch second."""
    if len(utc_s) == 0:
        return np.zeros(0, dtype=np.int64)
    df = pl.DataFrame({"start_utc": np.asarray(utc_s, dtype=np.int64)}).with_columns(
        pl.from_epoch("start_utc", time_unit="s").dt.replace_time_zone("UTC")
    )
    return zone_offsets(df, user)["utc_offset_min"].to_numpy().astype(np.int64)


def epoch_s(col: pl.Series) -> np.ndarray:
    """Epoch seconds of a UTC datetime column (simulated times are whole seconds)."""
    return (col.dt.epoch("s")).to_numpy().astype(np.int64)
