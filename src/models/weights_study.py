"""Should the balance index use fitted weights? The grouped comparison behind the model card.

Labelled data we may use (``../shared/data``): LifeSnaps (CC BY 4.0) has nightly RMSSD, NREM HR,
resting HR, breathing rate and skin temperature beside momentary self-reports (RESTED/RELAXED,
TIRED, TENSE/ANXIOUS); PMData (CC BY 4.0) has morning readiness and fatigue beside Fitbit's resting
HR (no HRV). The markers' personal z-scores are computed with the pipeline's own baselines
(``features.baselines``), then equal weights are compared with non-negative weights fitted on
other people (grouped K-fold, nobody in both), by per-person Spearman ρ against the target.
The default keeps equal weights unless the fit wins on people it never saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sklearn.model_selection import GroupKFold

from tunewell.features.baselines import baselines, date_spine
from tunewell.models.balance import BalanceIndex, z_column

LIFESNAPS_FILE = "daily_fitbit_sema_df_unprocessed.csv"
LIFESNAPS_SERIES = {
    "ln_rmssd": pl.when(pl.col("rmssd") > 0).then(pl.col("rmssd").log()),
    "resting_hr": pl.col("resting_hr"),
    "hr_sleep_mean": pl.when(pl.col("nremhr") > 0).then(pl.col("nremhr")),
    "resp_rate": pl.col("full_sleep_breathing_rate"),
    "skin_temp_dev": pl.col("nightly_temperature"),
}
# Fitbit's own scores in LifeSnaps: yardsticks for the index, never inputs or targets
# (stress_score: higher = fewer signs of stress; responsiveness: its HRV/RHR/EDA component).
LIFESNAPS_VENDOR = ("stress_score", "responsiveness_points_percentage", "sleep_points_percentage")
MIN_NIGHTS = 10
USABLE_RHO = 0.1  # below this the shared-data README calls a target unusable for the index


@dataclass
class WeightComparison:
    dataset: str
    target: str
    n_nights: int
    n_people: int
    markers: list[str]
    fitted_weights: dict[str, float]
    within_rho_equal: float | None
    within_rho_fitted: float | None
    pooled_rho_equal: float | None
    pooled_rho_fitted: float | None
    fitted_wins: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _zscores(daily: pl.DataFrame, series: list[str]) -> pl.DataFrame:
    lf = daily.lazy()
    spine = date_spine(lf)
    full = spine.join(lf, on=["user_id", "sleep_date"], how="left")
    b = baselines(full, tuple(series)).collect()
    return full.collect().join(b, on=["user_id", "sleep_date"], how="left")


def lifesnaps_frame(path: Path) -> pl.DataFrame:
    """Nights with the markers' z-scores and target = RESTED/RELAXED − TIRED − TENSE/ANXIOUS."""
    raw = pl.read_csv(path, infer_schema_length=10000)
    daily = raw.select(
        pl.col("id").cast(pl.String).alias("user_id"),
        pl.col("date").str.to_date().alias("sleep_date"),
        *(e.cast(pl.Float64).alias(k) for k, e in LIFESNAPS_SERIES.items()),
        (
            pl.col("RESTED/RELAXED").cast(pl.Float64)
            - pl.col("TIRED").cast(pl.Float64)
            - pl.col("TENSE/ANXIOUS").cast(pl.Float64)
        ).alias("y"),
        *(pl.col(c).cast(pl.Float64).alias(c) for c in LIFESNAPS_VENDOR),
    ).unique(["user_id", "sleep_date"], keep="first")
    return _zscores(daily, list(LIFESNAPS_SERIES))


def pmdata_frame(root: Path, target: str = "readiness") -> pl.DataFrame:
    """PMData nights: resting HR z (Fitbit's own RHR from sleep_score.csv) and a morning item."""
    rows = []
    for p in sorted(x for x in Path(root).iterdir() if (x / "fitbit").exists()):
        rhr = pl.read_csv(p / "fitbit" / "sleep_score.csv").select(
            pl.col("timestamp").str.slice(0, 10).str.to_date().alias("sleep_date"),
            pl.col("resting_heart_rate").cast(pl.Float64).alias("resting_hr"),
        )
        w = pl.read_csv(p / "pmsys" / "wellness.csv").select(
            pl.col("effective_time_frame").str.slice(0, 10).str.to_date().alias("sleep_date"),
            pl.col(target).cast(pl.Float64).alias("y"),
        )
        d = rhr.join(w, on="sleep_date", how="full", coalesce=True)
        rows.append(d.with_columns(pl.lit(p.name).alias("user_id")))
    daily = pl.concat(rows).unique(["user_id", "sleep_date"], keep="first")
    return _zscores(daily, ["resting_hr"])


def _per_person(pred: np.ndarray, y: np.ndarray, g: np.ndarray) -> dict[str, float]:
    r = {}
    for u in np.unique(g):
        m = (g == u) & np.isfinite(pred) & np.isfinite(y)
        if m.sum() >= MIN_NIGHTS and np.std(pred[m]) > 0 and np.std(y[m]) > 0:
            r[str(u)] = float(spearmanr(pred[m], y[m]).statistic)
    return r


def _mean(r: dict[str, float]) -> float | None:
    return float(np.mean(list(r.values()))) if r else None


def fitted_beats_equal(eq: dict[str, float], fit: dict[str, float]) -> bool:
    """The fit must win on held-out people by more than twice the standard error of the paired
    per-person differences, and reach a within-person ρ of at least ``USABLE_RHO``; a win inside
    the noise is not a reason to give up weights anyone can explain."""
    both = sorted(set(eq) & set(fit))
    if len(both) < 3:
        return False
    diff = np.array([fit[u] - eq[u] for u in both])
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return bool(diff.mean() > 2 * se and np.mean([fit[u] for u in both]) >= USABLE_RHO)


def _pooled(pred: np.ndarray, y: np.ndarray) -> float | None:
    m = np.isfinite(pred) & np.isfinite(y)
    return float(spearmanr(pred[m], y[m]).statistic) if m.sum() >= MIN_NIGHTS else None


def compare_weights(
    frame: pl.DataFrame, markers: list[str], dataset: str, target: str, folds: int = 5
) -> WeightComparison:
    """Equal vs fitted non-negative weights on held-out people (grouped K-fold)."""
    cols = [z_column(m) for m in markers]
    d = frame.filter(pl.col("y").is_not_null() & pl.any_horizontal(pl.col(cols).is_not_null()))
    d = d.with_columns(pl.col(cols).fill_nan(None))
    X = d.select(cols).to_pandas()
    y = d["y"].to_numpy().astype(float)
    g = d["user_id"].to_numpy()
    eq = BalanceIndex().fit(X).predict(X)
    fitted = np.full(len(y), np.nan)
    for tr, te in GroupKFold(n_splits=min(folds, len(np.unique(g)))).split(X, y, g):
        m = BalanceIndex(weights="fit").fit(X.iloc[tr], y[tr])
        fitted[te] = m.predict(X.iloc[te])
    full = BalanceIndex(weights="fit").fit(X, y) if len(markers) > 1 else BalanceIndex().fit(X)
    pe, pf = _per_person(eq, y, g), _per_person(fitted, y, g)
    we, wf = _mean(pe), _mean(pf)
    return WeightComparison(
        dataset=dataset,
        target=target,
        n_nights=len(y),
        n_people=len(np.unique(g)),
        markers=markers,
        fitted_weights={
            m: round(float(w), 3) for m, w in zip(full.markers_, full.weights_, strict=True)
        },
        within_rho_equal=we,
        within_rho_fitted=wf,
        pooled_rho_equal=_pooled(eq, y),
        pooled_rho_fitted=_pooled(fitted, y),
        fitted_wins=fitted_beats_equal(pe, pf),
    )


@dataclass
class VendorYardstick:
    dataset: str
    vendor_score: str
    n_people: int
    n_nights: int
    within_rho_index: float | None
    within_rho_plain: float | None
    pooled_rho_index: float | None
    pooled_rho_plain: float | None


def vendor_yardsticks(frame: pl.DataFrame, dataset: str = "LifeSnaps") -> list[VendorYardstick]:
    """ρ of the equal-weight index and of z(lnRMSSD) − z(resting HR) against each vendor score."""
    cols = [z_column(m) for m in LIFESNAPS_SERIES]
    d = frame.with_columns(pl.col(cols).fill_nan(None))
    d = d.filter(pl.any_horizontal(pl.col(cols).is_not_null()))
    X = d.select(cols).to_pandas()
    idx = BalanceIndex().fit(X).predict(X)
    plain = (d["ln_rmssd_z"] - d["resting_hr_z"]).to_numpy().astype(float)
    g = d["user_id"].to_numpy()
    out = []
    for c in LIFESNAPS_VENDOR:
        if c not in d.columns:
            continue
        v = d[c].to_numpy().astype(float)
        ok = np.isfinite(v) & np.isfinite(idx)
        out.append(
            VendorYardstick(
                dataset,
                c,
                len(np.unique(g[ok])),
                int(ok.sum()),
                _mean(_per_person(idx, v, g)),
                _mean(_per_person(plain, v, g)),
                _pooled(idx, v),
                _pooled(plain, v),
            )
        )
    return out


def run_yardsticks(shared_data: Path) -> list[VendorYardstick]:
    ls = Path(shared_data) / "lifesnaps" / LIFESNAPS_FILE
    return vendor_yardsticks(lifesnaps_frame(ls)) if ls.exists() else []


def run(shared_data: Path) -> list[WeightComparison]:
    """Every comparison the shared data allow (missing datasets are skipped)."""
    out = []
    ls = Path(shared_data) / "lifesnaps" / LIFESNAPS_FILE
    if ls.exists():
        f = lifesnaps_frame(ls)
        out.append(
            compare_weights(
                f, list(LIFESNAPS_SERIES), "LifeSnaps", "RESTED/RELAXED − TIRED − TENSE/ANXIOUS"
            )
        )
    pm = Path(shared_data) / "pmdata"
    if pm.exists():
        for target in ("readiness", "fatigue"):
            f = pmdata_frame(pm, target)
            out.append(compare_weights(f, ["resting_hr"], "PMData", target))
    return out
