"""Arousal/inhibition (autonomic) balance index (METRICS.md "Arousal / inhibition balance").

The index is a weighted mean of signed, clipped personal z-scores, so it stays explainable: each
night's value splits exactly into per-marker contributions that a coach page can show. The z-scores
come from ``features.baselines`` (causal: the 60 days before the acute week), so the index of a
night depends only on that night's ``nightly_features`` row; scoring a date range therefore gives
the same rows as scoring everything.

Markers are a parameter: whichever ``<marker>_z`` columns exist are used, and weights are
renormalised over the markers measured on each night (a night without HRV still gets an index from
heart rate, with lower confidence).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import polars as pl
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from tunewell.features.baselines import CHRONIC_MIN, SWC_FACTOR

CLIP_Z = 3.0
SCALE = 100.0 / CLIP_Z  # index points per z unit: ±3 SD → ±100
BALANCED_BAND = SCALE * SWC_FACTOR  # |index| ≤ SWC (0.5 SD) ≈ 16.7 is "balanced"
FULL_HISTORY = 30  # chronic days for full confidence
# v1: equal (literature-fixed) weights; the fitted alternative did not beat them (model card).
BALANCE_VERSION = "balance-1.0.0"


class BalanceState(StrEnum):
    CALIBRATING = "calibrating"
    AROUSAL = "arousal-leaning"
    BALANCED = "balanced"
    INHIBITION = "inhibition-leaning"


@dataclass(frozen=True)
class Marker:
    name: str  # the nightly_features series; its z-score is f"{name}_z"
    sign: float  # +1: higher value = inhibition-leaning (parasympathetic)
    why: str


MARKERS: dict[str, Marker] = {
    m.name: m
    for m in (
        Marker("ln_rmssd", +1.0, "higher nightly lnRMSSD = more vagal activity"),
        Marker("resting_hr", -1.0, "lower resting HR = inhibition-leaning"),
        Marker("hr_sleep_mean", -1.0, "lower sleeping HR = inhibition-leaning"),
        Marker("hr_dip_pct", +1.0, "a deeper nocturnal HR dip = inhibition-leaning"),
        Marker("resp_rate", -1.0, "raised respiratory rate = arousal-leaning"),
        Marker("skin_temp_dev", -1.0, "raised skin temperature = arousal-leaning"),
    )
}
DEFAULT_MARKERS = tuple(MARKERS)
# The two baselines METRICS.md requires before the index leaves `calibrating`.
REQUIRED_BASELINES = ("ln_rmssd", "resting_hr")


def z_column(marker: str) -> str:
    return f"{marker}_z"


class BalanceIndex(TransformerMixin, BaseEstimator):
    """Weighted mean of signed personal z-scores, clipped to ±``clip``, on −100..100.

    ``X`` holds one column per marker: the night's z-score against the person's own baseline
    (NaN where the marker was not measured). Columns named ``<marker>_z`` after a known marker get
    that marker's sign; any other column is taken as already signed (+1), which is what lets the
    generic scikit-learn checks run on plain arrays.

    ``weights``: None = equal weights (the literature-fixed default: every marker of METRICS.md
    counts the same); a mapping marker → weight; or ``"fit"`` = non-negative least squares of
    ``y`` on the signed clipped z-scores (a labelled target such as next-morning readiness).

    ``transform`` returns each marker's contribution in index points (NaN where missing), so that
    ``predict`` (their sum) is exactly explained by it.
    """

    def __init__(
        self,
        markers: tuple[str, ...] | None = None,
        weights: dict[str, float] | str | None = None,
        clip: float = CLIP_Z,
    ) -> None:
        self.markers = markers
        self.weights = weights
        self.clip = clip

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = self.weights == "fit"
        return tags

    def _names(self, n: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(c) for c in names]
        if self.markers is not None and len(self.markers) == n:
            return [z_column(m) for m in self.markers]
        return [f"x{i}" for i in range(n)]

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        names = self._names(X.shape[1])
        self.markers_ = tuple(c.removesuffix("_z") for c in names)
        self.signs_ = np.array([MARKERS[m].sign if m in MARKERS else 1.0 for m in self.markers_])
        if self.weights is None:
            w = np.ones(len(self.markers_))
        elif isinstance(self.weights, str):
            if self.weights != "fit":
                raise ValueError(f"weights must be None, a mapping or 'fit', not {self.weights!r}")
            if y is None:
                raise ValueError(
                    "BalanceIndex with weights='fit' requires y to be passed, "
                    "but the target y is None"
                )
            y = np.asarray(y, dtype=np.float64)
            ok = np.isfinite(y)
            S = np.nan_to_num(self._signed(X))[ok]
            w, _ = nnls(np.column_stack([S, np.ones(len(S))]), y[ok] - y[ok].min())
            w = w[:-1]
            if not np.any(w > 0):
                w = np.ones(len(self.markers_))
        else:
            unknown = set(self.weights) - set(self.markers_)
            if unknown:
                raise ValueError(f"weights for markers not in X: {sorted(unknown)}")
            w = np.array([float(self.weights.get(m, 0.0)) for m in self.markers_])
            if np.any(w < 0) or not np.any(w > 0):
                raise ValueError("weights must be non-negative with at least one positive")
        self.weights_ = w / w.sum()
        return self

    def _signed(self, X: np.ndarray) -> np.ndarray:
        return np.clip(X, -self.clip, self.clip) * self.signs_

    def _check(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)

    def weight_share(self, X) -> np.ndarray:
        """Share of the model's total weight whose markers were measured on each row (0..1)."""
        X = self._check(X)
        return (~np.isnan(X) * self.weights_).sum(axis=1)

    def transform(self, X) -> np.ndarray:
        X = self._check(X)
        share = (~np.isnan(X) * self.weights_).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return SCALE * self._signed(X) * self.weights_ / share

    def predict(self, X) -> np.ndarray:
        c = self.transform(X)
        out = np.nansum(c, axis=1)
        out[np.all(np.isnan(c), axis=1)] = np.nan
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        return np.array([f"{m}_contribution" for m in self.markers_], dtype=object)


def present_markers(columns: list[str], markers: tuple[str, ...] = DEFAULT_MARKERS) -> list[str]:
    """The markers whose z-score column exists (w8f's new series appear here once they land)."""
    return [m for m in markers if z_column(m) in columns]


def default_model(nightly: pl.DataFrame) -> BalanceIndex:
    """Equal weights over the marker columns the frame has; independent of the rows' values."""
    cols = [z_column(m) for m in present_markers(nightly.columns)]
    # fit() only records the markers and their signs (weights None), so two rows suffice
    return BalanceIndex().fit(_z_frame(nightly.head(2), cols) if nightly.height else _empty(cols))


def _empty(cols: list[str]):
    return _to_pandas(pl.DataFrame({c: [np.nan] for c in cols}))


def _to_pandas(df: pl.DataFrame):
    # scikit-learn keeps feature names from pandas frames; a library demand, so pandas here only
    return df.to_pandas()


def _z_frame(nightly: pl.DataFrame, cols: list[str]):
    return _to_pandas(nightly.select(pl.col(c).cast(pl.Float64).fill_nan(None) for c in cols))


def state_expr(index: pl.Expr, calibrating: pl.Expr) -> pl.Expr:
    """METRICS.md bands: calibrating, else balanced within ±SWC (0.5 SD in index points)."""
    return (
        pl.when(index.is_null())
        .then(pl.lit(None, pl.String))
        .when(calibrating)
        .then(pl.lit(BalanceState.CALIBRATING.value))
        .when(index < -BALANCED_BAND)
        .then(pl.lit(BalanceState.AROUSAL.value))
        .when(index > BALANCED_BAND)
        .then(pl.lit(BalanceState.INHIBITION.value))
        .otherwise(pl.lit(BalanceState.BALANCED.value))
    )


def _n60(nightly: pl.DataFrame, marker: str) -> pl.Expr:
    c = f"{marker}_n60"
    return pl.col(c).fill_null(0) if c in nightly.columns else pl.lit(0)


def balance_frame(nightly: pl.DataFrame, model: BalanceIndex | None = None) -> pl.DataFrame:
    """Index, state, confidence, markers and contributors for each ``nightly_features`` row.

    Calibrating while either required baseline (lnRMSSD, resting HR) has < 14 chronic days.
    Confidence = share of the weight measured that night × min(1, n60 / 30), with n60 the smaller
    chronic-day count of the two required baselines (the index is only as settled as those).
    """
    model = model or default_model(nightly)
    cols = [z_column(m) for m in model.markers_]
    keys = nightly.select("user_id", "sleep_date")
    if nightly.height == 0:
        return keys.with_columns(
            pl.lit(None, pl.Float64).alias("balance_index"),
            pl.lit(None, pl.String).alias("balance_state"),
            pl.lit(None, pl.Float64).alias("balance_confidence"),
            pl.lit(None, pl.String).alias("balance_markers"),
            pl.lit(None, pl.String).alias("contributors"),
        )
    Z = _z_frame(nightly, cols)
    contrib = model.transform(Z)
    index = model.predict(Z)
    share = model.weight_share(Z)
    z = Z.to_numpy()
    renorm = model.weights_ / np.where(share > 0, share, np.nan)[:, None]
    values = nightly.select(
        pl.col(m).cast(pl.Float64) if m in nightly.columns else pl.lit(None, pl.Float64).alias(m)
        for m in model.markers_
    ).to_numpy()
    total = np.nansum(np.abs(contrib), axis=1)
    markers_used: list[str | None] = []
    contributors: list[str | None] = []
    for i in range(len(z)):
        items = []
        for j, m in enumerate(model.markers_):
            if np.isnan(z[i, j]):
                continue
            items.append(
                {
                    "marker": m,
                    "value": None if np.isnan(values[i, j]) else round(float(values[i, j]), 4),
                    "z": round(float(z[i, j]), 4),
                    "weight": round(float(renorm[i, j]), 4),
                    "share": round(float(contrib[i, j] / total[i]), 4) if total[i] > 0 else 0.0,
                }
            )
        markers_used.append(",".join(str(x["marker"]) for x in items) or None)
        contributors.append(json.dumps(items) if items else None)
    calibrating = pl.lit(False)
    for m in REQUIRED_BASELINES:
        calibrating = calibrating | (_n60(nightly, m) < CHRONIC_MIN)
    n60 = pl.min_horizontal(*(_n60(nightly, m) for m in REQUIRED_BASELINES))
    hist = nightly.select(calibrating.alias("_calibrating"), n60.alias("_n60"))
    out = pl.concat([keys, hist], how="horizontal").with_columns(
        pl.Series("balance_index", index).fill_nan(None),
        pl.Series("_share", share),
        pl.Series("balance_markers", markers_used, dtype=pl.String),
        pl.Series("contributors", contributors, dtype=pl.String),
    )
    return out.with_columns(
        state_expr(pl.col("balance_index"), pl.col("_calibrating")).alias("balance_state"),
        pl.when(pl.col("balance_index").is_not_null())
        .then(pl.col("_share") * pl.min_horizontal(pl.lit(1.0), pl.col("_n60") / FULL_HISTORY))
        .alias("balance_confidence"),
    ).select(
        "user_id",
        "sleep_date",
        "balance_index",
        "balance_state",
        "balance_confidence",
        "balance_markers",
        "contributors",
    )
