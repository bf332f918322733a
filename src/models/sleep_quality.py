"""Nightly sleep-quality score (0–100) and the rule flags of METRICS.md "Sleep-quality indicator".

The score is a ridge regression fitted to next-morning self-reported sleep quality (PMData, 1–5)
from the night's ``nightly_features`` row only, so scoring a night depends on nothing else and an
incremental rescore equals a full one. Two variants share one file: ``staged`` (adds deep-sleep
minutes) for nights with stages, ``unstaged`` for nights without (classic Fitbit, Apple without
stages, WHOOP summaries), trained on every night with the stage columns left out.

The target is centred per person before fitting: between-person differences in how people use a
1–5 scale cannot be learnt for someone the model has never seen, and fitting them only adds noise
to the weights (grouped CV: pooled ρ 0.29 → 0.37, see the model card). Feature choices that did
not help on grouped CV (timing, regularity, personal z-scores) are documented there, not shipped.

The model file is skops, never pickle; loading refuses any type outside scikit-learn/numpy and a
file whose SHA-256 differs from the version manifest beside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

SLEEP_NEED_MIN = 420.0  # ≥ 7 h for adults (Hirshkowitz 2015; Watson 2015)
UNSTAGED_FEATURES = ("tst_h", "deficit_h", "efficiency_pct", "waso_min", "sol_min")
STAGED_FEATURES = (*UNSTAGED_FEATURES, "deep_min")
ALPHA = 1000.0
MODEL_NAME = "sleep_quality"
MODEL_VERSION = "sq-1.0.0"
TARGET_ITEM = "sleep_quality"
TARGET_MIN, TARGET_MAX = 1.0, 5.0
OFFSET = (TARGET_MIN + TARGET_MAX) / 2
# Types a model file may contain beyond skops' default trusted set (scikit-learn, numpy arrays).
EXTRA_TRUSTED = ("numpy.dtype",)
DEFAULT_DIR = "default"  # package folder holding the shipped file and its manifest
# fitbit overall_score: the yardstick on the same nights, never an input
YARDSTICK = ("fitbit", "overall_score")


class ModelFileError(RuntimeError):
    """A model file that must not be loaded: untrusted types, a wrong hash, or no manifest."""


# ----------------------------------------------------------------------------- features + flags
def night_inputs(nightly: pl.DataFrame) -> pl.DataFrame:
    """Model inputs derived from ``nightly_features`` (hours, deficit below the 7 h need)."""
    return nightly.with_columns(
        (pl.col("tst_min") / 60).alias("tst_h"),
        ((SLEEP_NEED_MIN - pl.col("tst_min")).clip(lower_bound=0) / 60).alias("deficit_h"),
        pl.col("deep_min").is_not_null().alias("staged"),
    )


def _any_known(*conds: pl.Expr) -> pl.Expr:
    """True if any known condition holds; null only when every input is missing."""
    known = pl.any_horizontal(*(c.is_not_null() for c in conds))
    hit = pl.any_horizontal(*(c.fill_null(False) for c in conds))
    return pl.when(known).then(hit)


def rule_flags(nightly: pl.DataFrame) -> pl.DataFrame:
    """METRICS.md rule flags (Ohayon 2017, Hirshkowitz 2015, Phillips 2017) as named booleans."""
    tst = pl.col("tst_min")
    personal_short = pl.col("tst_min") < (pl.col("tst_min_mu60") - pl.col("tst_min_swc"))
    return nightly.select(
        "user_id",
        "sleep_date",
        pl.when(tst.is_not_null())
        .then((tst < SLEEP_NEED_MIN) | personal_short.fill_null(False))
        .alias("flag_short_sleep"),
        (pl.col("efficiency_pct") < 85).alias("flag_low_efficiency"),
        (pl.col("sol_min") > 30).alias("flag_long_latency"),
        _any_known(pl.col("awakenings") > 1, pl.col("waso_min") > 20).alias("flag_fragmented"),
        _any_known(
            pl.col("sri") < 80, pl.col("bedtime_sd_min") > 60, pl.col("waketime_sd_min") > 60
        ).alias("flag_irregular"),
    )


# ----------------------------------------------------------------------------- the model
def _pipe(alpha: float) -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), Ridge(alpha=alpha))


def _x(df: pl.DataFrame, cols: tuple[str, ...]) -> np.ndarray:
    return df.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy()


def fit_model(train: pl.DataFrame, alpha: float = ALPHA) -> dict:
    """Fit both variants on ``train`` (night_inputs + ``y`` + ``user_id``); a plain dict of
    scikit-learn objects and numbers, so skops needs to trust nothing of ours."""
    y = train["y"].to_numpy().astype(float)
    yc = y - train.select(pl.col("y").mean().over("user_id")).to_series().to_numpy()
    staged = train.filter(pl.col("staged"))
    ycs = yc[train["staged"].to_numpy()]
    bundle: dict = {
        # The scale's midpoint, not the training people's mean: with the target centred per person
        # a learnt offset only moves with whoever is in the training folds (grouped CV: pooled ρ
        # 0.29 with it, 0.37 without; model card), and nobody's personal mean is knowable anyway.
        "offset": OFFSET,
        "unstaged": _pipe(alpha).fit(_x(train, UNSTAGED_FEATURES), yc),
        "unstaged_features": list(UNSTAGED_FEATURES),
        "staged_features": list(STAGED_FEATURES),
    }
    bundle["staged"] = (
        _pipe(alpha).fit(_x(staged, STAGED_FEATURES), ycs) if staged.height >= 10 else None
    )
    return bundle


def predict_1to5(bundle: dict, nights: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predicted self-report (1–5) and whether the staged variant scored each night."""
    x = night_inputs(nights) if "staged" not in nights.columns else nights
    staged = x["staged"].to_numpy() & (bundle.get("staged") is not None)
    out = np.full(x.height, np.nan)
    if (~staged).any():
        out[~staged] = bundle["unstaged"].predict(
            _x(x.filter(pl.Series(~staged)), tuple(bundle["unstaged_features"]))
        )
    if staged.any():
        out[staged] = bundle["staged"].predict(
            _x(x.filter(pl.Series(staged)), tuple(bundle["staged_features"]))
        )
    personal = bundle.get("personal")
    if personal is not None:
        base = out + bundle["offset"]
        feats = np.column_stack([base, _x(x, tuple(bundle["unstaged_features"]))])
        return np.clip(personal.predict(feats), TARGET_MIN, TARGET_MAX), staged
    return np.clip(out + bundle["offset"], TARGET_MIN, TARGET_MAX), staged


def to_score(pred_1to5: np.ndarray) -> np.ndarray:
    """1–5 → 0–100, linear, so the score reads as the expected self-report."""
    return np.clip((pred_1to5 - TARGET_MIN) / (TARGET_MAX - TARGET_MIN) * 100, 0, 100)


def sleep_quality_frame(nightly: pl.DataFrame, bundle: dict) -> pl.DataFrame:
    """``sleep_quality`` (null without a main sleep) and its basis, per nightly row."""
    x = night_inputs(nightly)
    has_sleep = x["tst_min"].is_not_null().to_numpy()
    score = np.full(x.height, np.nan)
    basis = np.full(x.height, None, dtype=object)
    if has_sleep.any():
        sub = x.filter(pl.Series(has_sleep))
        pred, staged = predict_1to5(bundle, sub)
        score[has_sleep] = to_score(pred)
        basis[has_sleep] = np.where(staged, "staged", "unstaged")
    return x.select("user_id", "sleep_date").with_columns(
        pl.Series("sleep_quality", score).fill_nan(None),
        pl.Series("sleep_quality_basis", list(basis), dtype=pl.String),
    )


# ----------------------------------------------------------------------------- training data
def training_frame(
    nightly: pl.DataFrame, self_report: pl.DataFrame, vendor_score: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Nights with a main sleep joined to the morning's self-report (its date = the wake date).

    The Fitbit score is attached as ``yardstick`` for evaluation only; no model reads it.
    """
    y = self_report.filter(pl.col("item") == TARGET_ITEM).select(
        "user_id", pl.col("date").alias("sleep_date"), pl.col("value").alias("y")
    )
    y = y.filter(pl.col("y").is_not_null()).unique(["user_id", "sleep_date"], keep="last")
    d = night_inputs(nightly.filter(pl.col("sleep_ok"))).join(y, on=["user_id", "sleep_date"])
    if vendor_score is not None and vendor_score.height:
        vs = vendor_score.filter(
            (pl.col("vendor") == YARDSTICK[0]) & (pl.col("name") == YARDSTICK[1])
        ).select("user_id", pl.col("date").alias("sleep_date"), pl.col("value").alias("yardstick"))
        d = d.join(vs.unique(["user_id", "sleep_date"]), on=["user_id", "sleep_date"], how="left")
    else:
        d = d.with_columns(pl.lit(None, pl.Float64).alias("yardstick"))
    return d.sort("user_id", "sleep_date")


# ----------------------------------------------------------------------------- evaluation
def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


@dataclass
class FoldResult:
    person: str
    n: int
    rho_ours: float | None
    rho_vendor: float | None
    mae_ours: float
    mae_vendor: float | None


@dataclass
class Evaluation:
    n_nights: int
    n_people: int
    pooled_rho_ours: float | None
    pooled_rho_vendor: float | None
    within_rho_ours: float | None
    within_rho_vendor: float | None
    mae_ours: float
    mae_vendor: float | None
    folds: list[FoldResult] = field(default_factory=list)
    alpha: float = ALPHA

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_lopo(frame: pl.DataFrame, alpha: float = ALPHA) -> Evaluation:
    """Leave-one-person-out: each person scored by a model that never saw them.

    Compared on exactly the nights that have the vendor score (when any do); the vendor's 0–100
    score is mapped to 1–5 by a line fitted on the training people of the same fold, for MAE.
    """
    d = frame.filter(pl.col("yardstick").is_not_null()) if frame["yardstick"].count() else frame
    people = sorted(d["user_id"].unique().to_list())
    if len(people) < 2:
        raise ValueError("leave-one-person-out needs at least two people with self-reports")
    pred = np.full(d.height, np.nan)
    vend = np.full(d.height, np.nan)
    uid = d["user_id"].to_numpy()
    has_vendor = d["yardstick"].count() > 0
    for p in people:
        te = uid == p
        tr_df, te_df = d.filter(pl.Series(~te)), d.filter(pl.Series(te))
        pred[te] = predict_1to5(fit_model(tr_df, alpha), te_df)[0]
        if has_vendor:
            lin = LinearRegression().fit(tr_df.select("yardstick").to_numpy(), tr_df["y"])
            vend[te] = np.clip(lin.predict(te_df.select("yardstick").to_numpy()), 1, 5)
    y = d["y"].to_numpy().astype(float)
    raw_vendor = d["yardstick"].to_numpy().astype(float) if has_vendor else None
    folds = []
    for p in people:
        m = uid == p
        folds.append(
            FoldResult(
                p,
                int(m.sum()),
                _rho(pred[m], y[m]),
                _rho(raw_vendor[m], y[m]) if raw_vendor is not None else None,
                float(np.mean(np.abs(pred[m] - y[m]))),
                float(np.mean(np.abs(vend[m] - y[m]))) if has_vendor else None,
            )
        )

    def mean(vals: list[float | None]) -> float | None:
        v = [x for x in vals if x is not None]
        return float(np.mean(v)) if v else None

    return Evaluation(
        n_nights=d.height,
        n_people=len(people),
        pooled_rho_ours=_rho(pred, y),
        pooled_rho_vendor=_rho(raw_vendor, y) if raw_vendor is not None else None,
        within_rho_ours=mean([f.rho_ours for f in folds]),
        within_rho_vendor=mean([f.rho_vendor for f in folds]),
        mae_ours=float(np.mean(np.abs(pred - y))),
        mae_vendor=float(np.mean(np.abs(vend - y))) if has_vendor else None,
        folds=folds,
        alpha=alpha,
    )


# ----------------------------------------------------------------------------- personalisation
PERSONAL_MIN_REPORTS = 30
PERSONAL_TRAIN_SHARE = 2 / 3


@dataclass
class PersonalResult:
    user_id: str
    n_past: int
    n_future: int
    mae_default: float | None
    mae_personal: float | None
    rho_default: float | None
    rho_personal: float | None
    used: bool
    reason: str


def fit_personal(bundle: dict, person: pl.DataFrame) -> tuple[PersonalResult, dict | None]:
    """A personal calibration on the person's own past reports, judged on their future only.

    The first two thirds of the person's nights (by date) train a small ridge on the default
    prediction plus the unstaged features; the last third judges it. It is used only if its MAE
    on that future is lower than the default's; the accepted model is then refitted on all nights.
    """
    uid = person["user_id"][0] if person.height else ""
    person = person.sort("sleep_date")
    n = person.height
    if n < PERSONAL_MIN_REPORTS:
        return PersonalResult(
            uid, n, 0, None, None, None, None, False,
            f"only {n} nights with a self-report (needs {PERSONAL_MIN_REPORTS})",
        ), None  # fmt: skip
    k = int(n * PERSONAL_TRAIN_SHARE)
    past, future = person.head(k), person.tail(n - k)
    base = {key: v for key, v in bundle.items() if key != "personal"}

    def fit(df: pl.DataFrame) -> Pipeline:
        feats = np.column_stack(
            [predict_1to5(base, df)[0], _x(df, tuple(base["unstaged_features"]))]
        )
        return _pipe(alpha=10.0).fit(feats, df["y"].to_numpy())

    personal = {**base, "personal": fit(past)}
    y = future["y"].to_numpy().astype(float)
    p_def = predict_1to5(base, future)[0]
    p_per = predict_1to5(personal, future)[0]
    mae_d, mae_p = float(np.mean(np.abs(p_def - y))), float(np.mean(np.abs(p_per - y)))
    used = mae_p < mae_d
    res = PersonalResult(
        uid, k, n - k, mae_d, mae_p, _rho(p_def, y), _rho(p_per, y), used,
        "personal calibration beats the default on the later nights"
        if used
        else "the default model is as good or better on the later nights; keeping it",
    )  # fmt: skip
    return res, ({**base, "personal": fit(person)} if used else None)


# ----------------------------------------------------------------------------- model files
def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_bundle(bundle: dict, path: Path, version: str, extra: dict | None = None) -> Path:
    """Write ``<path>`` (skops) and ``<path>.json`` (version, SHA-256, features, metrics)."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(bundle, path)
    manifest = {
        "name": MODEL_NAME,
        "version": version,
        "sha256": file_sha256(path),
        "staged_features": bundle["staged_features"],
        "unstaged_features": bundle["unstaged_features"],
        **(extra or {}),
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    return path


def manifest_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def load_bundle(path: Path) -> tuple[dict, str]:
    """Load a model file after checking its hash against its manifest and its types against
    skops' trusted set (scikit-learn and numpy only); anything else is refused."""
    import skops.io as sio

    path = Path(path)
    mpath = manifest_path(path)
    if not path.exists() or not mpath.exists():
        raise ModelFileError(f"{path}: model file or its manifest {mpath.name} is missing")
    manifest = json.loads(mpath.read_text())
    digest = file_sha256(path)
    if digest != manifest.get("sha256"):
        raise ModelFileError(
            f"{path}: SHA-256 {digest[:12]}… differs from the manifest "
            f"({str(manifest.get('sha256'))[:12]}…); the file was changed after training, refusing"
        )
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable skops file ({exc})") from None
    refused = [t for t in untrusted if t not in EXTRA_TRUSTED]
    if refused:
        raise ModelFileError(
            f"{path}: refusing to load types outside skops' trusted set: {', '.join(refused)}"
        )
    return sio.load(path, trusted=[t for t in untrusted if t in EXTRA_TRUSTED]), str(
        manifest["version"]
    )


def default_model_path() -> Path:
    return Path(str(resources.files("tunewell.models") / DEFAULT_DIR / f"{MODEL_NAME}.skops"))
