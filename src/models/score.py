"""Gold ``scores``: balance index and sleep quality for every nightly row (brief contract 3).

A score row is a pure function of its ``nightly_features`` row and the model files, so the nightly
path scores exactly the rows the feature refresh rebuilt (``refresh``: features + scores in one
call, scores written before the owed dates are cleared) and an incremental run equals a full one.
A new model version is applied by ``rescore``: rows are upserted by ``record_id`` (user and sleep
date), so they are replaced, never doubled.

Vendor scores are never read here: scoring sees ``nightly_features`` and the model files only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from tunewell.features.refresh import RefreshStats, refresh_gold
from tunewell.lake import store
from tunewell.lake.frames import conform, empty
from tunewell.lake.paths import lake_path
from tunewell.lake.schemas import table
from tunewell.models import balance, sleep_quality
from tunewell.settings import Settings, UserSettings

PERSONAL_DIR = "models"  # <lake>/models/<user>/sleep_quality.skops


@dataclass(frozen=True)
class SleepModel:
    bundle: dict
    version: str


_DEFAULT: SleepModel | None = None


def default_sleep_model() -> SleepModel:
    """The shipped model, loaded (and checked) once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        bundle, version = sleep_quality.load_bundle(sleep_quality.default_model_path())
        _DEFAULT = SleepModel(bundle, version)
    return _DEFAULT


def personal_model_path(lake: Path, user: str) -> Path:
    return lake_path(lake) / PERSONAL_DIR / user / f"{sleep_quality.MODEL_NAME}.skops"


def sleep_model_for(lake: Path | None, user: str) -> SleepModel:
    """The person's accepted personal calibration if ``tunewell train --user`` saved one."""
    if lake is not None:
        p = personal_model_path(lake, user)
        if p.exists():
            return SleepModel(*sleep_quality.load_bundle(p))
    return default_sleep_model()


def score_nights(
    nightly: pl.DataFrame,
    sleep_model: SleepModel | None = None,
    users: dict[str, UserSettings] | None = None,
    balance_model: balance.BalanceIndex | None = None,
) -> pl.DataFrame:
    """``scores`` rows (conformed, with record ids) for the ``nightly_features`` rows given."""
    if nightly.height == 0:
        return empty("scores")
    sm = sleep_model or default_sleep_model()
    b = balance.balance_frame(nightly, balance_model)
    q = sleep_quality.sleep_quality_frame(nightly, sm.bundle)
    f = sleep_quality.rule_flags(nightly)
    keys = ["user_id", "sleep_date"]
    out = b.join(q, on=keys, how="left").join(f, on=keys, how="left")
    out = out.with_columns(
        pl.lit(balance.BALANCE_VERSION).alias("balance_version"),
        pl.lit(sm.version).alias("model_version"),
    )
    t = table("scores")
    parts = []
    for (uid,), part in out.partition_by("user_id", as_dict=True).items():
        u = (users or {}).get(uid) or UserSettings(uid)
        parts.append(
            conform(
                part.select([c for c in out.columns if c in t.names and c != "user_id"]),
                "scores",
                user=u,
                source="",
                source_file="",
            )
        )
    return pl.concat(parts).sort("user_id", "sleep_date")


def derive_scores(settings: Settings):
    """The ``derive`` hook of ``features.refresh.refresh_gold``: scores for the rebuilt rows."""
    lake = lake_path(settings.lake)

    def derive(user: str, nightly: pl.DataFrame) -> dict[str, pl.DataFrame]:
        model = sleep_model_for(lake, user)
        return {"scores": score_nights(nightly, model, {user: settings.lake_user(user)})}

    return derive


def refresh(
    settings: Settings, changed: dict[str, list[date]] | None = None, *, full: bool = False
) -> RefreshStats:
    """Features then scores for what is owed (or everything with ``full``): the nightly path."""
    return refresh_gold(settings, changed, full=full, derive=derive_scores(settings))


def rescore(settings: Settings, users: list[str] | None = None) -> int:
    """Score every stored night again (after a new default or personal model): upsert by id."""
    lake = lake_path(settings.lake)
    n = 0
    for user in users or store.users_in(lake):
        nightly = store.scan(lake, "nightly_features", [user]).collect()
        if nightly.height == 0:
            continue
        df = score_nights(nightly, sleep_model_for(lake, user), {user: settings.lake_user(user)})
        with store.lake_lock(lake):
            store.upsert(lake, "scores", df)
        n += df.height
    return n
