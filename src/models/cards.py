"""Model cards (Markdown) written by training beside the model files, numbers included."""

from __future__ import annotations

from tunewell.models import balance, sleep_quality
from tunewell.models.evaluate import Report, render_markdown
from tunewell.models.weights_study import VendorYardstick, WeightComparison


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _verdict(ev: sleep_quality.Evaluation) -> str:
    def cmp(ours: float | None, vendor: float | None, lower_better: bool = False) -> str:
        if ours is None or vendor is None:
            return "not comparable"
        better = ours < vendor if lower_better else ours > vendor
        return "above Fitbit" if better else "not above Fitbit"

    goal = (ev.pooled_rho_ours or 0) >= 0.40
    mae = "better than" if (ev.mae_vendor or 0) > ev.mae_ours else "not better than"
    return (
        f"pooled ρ {_f(ev.pooled_rho_ours)} ({cmp(ev.pooled_rho_ours, ev.pooled_rho_vendor)}, "
        f"{'meets' if goal else 'below'} the 0.40 goal), within-person ρ "
        f"{_f(ev.within_rho_ours)} ({cmp(ev.within_rho_ours, ev.within_rho_vendor)}), MAE "
        f"{_f(ev.mae_ours)} ({mae} Fitbit's {_f(ev.mae_vendor)})"
    )


def sleep_quality_card(ev: sleep_quality.Evaluation, version: str, people: list[str]) -> str:
    table = render_markdown(Report(ev, "")).split("## Balance index")[0]
    table = table.split("## Sleep-quality score", 1)[1].strip()
    return f"""# Model card: sleep-quality score `{version}`

## What it does
Estimates, for one night, the next-morning self-reported sleep quality (1–5) and shows it on
0–100 (`(ŷ − 1) / 4 × 100`) in gold `scores.sleep_quality`, with `sleep_quality_basis` saying
which variant scored the night: `staged` (features below plus deep-sleep minutes) or `unstaged`
(nights without stages: classic Fitbit, Apple without stages, WHOOP summaries).

## Training data and licence
PMData (Thambawita V. et al. 2020, *PMData: a sports logging dataset*, MMSys '20; Simula),
participants {", ".join(people)}, Fitbit Versa 2, 2019-11..2020-03, licensed **CC BY 4.0**.
Target: `pmsys/wellness.csv` `sleep_quality` answered on the wake-up date. Inputs come from the
same pipeline users run: the files are ingested by `tunewell.ingest.runner` into a temporary lake
and `nightly_features` is built by `tunewell.features`. Fitbit's `overall_score` is the
yardstick only, never an input.

## Model
Ridge regression (α = {ev.alpha:g}) after median imputation and standardisation; target centred
per person (how someone uses a 1–5 scale cannot be known for a new person); offset = 3, the
scale's midpoint. Features: {", ".join(sleep_quality.UNSTAGED_FEATURES)} (`tst_h` = TST in hours,
`deficit_h` = hours below the 7 h need); staged adds `deep_min`.
Tried on the same grouped folds and not shipped (lower pooled and within-person ρ): stage
percentages, REM minutes, awakenings, onset/offset clock times, bedtime/wake SD, social jet lag,
personal z-scores of TST and midpoint, night-vs-own-28-night-mean deviations, gradient boosting.
Fitting the offset per fold (mean of the training people) gave pooled ρ 0.287: the offset moves
with whoever is in the training folds while the nightly signal is small. Because the feature set,
α and offset were chosen on these same folds, the numbers below are somewhat optimistic.

## Grouped cross-validation (leave one person out)
Every person is scored by a model trained without them, on exactly the nights that also have
Fitbit's score.

{table}

Goal: ρ ≥ 0.40 on unseen people and above Fitbit on the same nights. Measured: {_verdict(ev)}.

## Personalisation
`tunewell train --user ID` fits a small ridge on the person's own past nights (default prediction
+ the unstaged features), judges it on their later nights only (first two thirds → last third)
and keeps it only if its MAE there is lower than the default's; it needs ≥
{sleep_quality.PERSONAL_MIN_REPORTS} nights with a self-report.

## Limits
Eight people, one device (Fitbit Versa 2), one winter; self-reports are coarse (most answers are
2–4) and several people barely vary theirs (p02, p03), so their within-person ρ is noise. TST
carries most of the signal. Not a clinical measure of sleep.
"""


YHEADER = (
    "| data | vendor score | people | nights | within ρ index | within ρ plain | "
    "pooled ρ index | pooled ρ plain |\n|---|---|---|---|---|---|---|---|"
)
HEADER = (
    "| data | target | people | nights | markers | within ρ equal | within ρ fitted | "
    "pooled ρ equal | pooled ρ fitted | fitted weights (all data) | fit adopted |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def balance_card(
    comparisons: list[WeightComparison], yardsticks: list[VendorYardstick] | None = None
) -> str:
    rows = "\n".join(
        f"| {c.dataset} | {c.target} | {c.n_people} | {c.n_nights} | {', '.join(c.markers)} | "
        f"{_f(c.within_rho_equal)} | {_f(c.within_rho_fitted)} | {_f(c.pooled_rho_equal)} | "
        f"{_f(c.pooled_rho_fitted)} | "
        f"{', '.join(f'{k} {v:.2f}' for k, v in c.fitted_weights.items())} | "
        f"{'yes' if c.fitted_wins else 'no'} |"
        for c in comparisons
    )
    ys = "\n".join(
        f"| {y.dataset} | {y.vendor_score} | {y.n_people} | {y.n_nights} | "
        f"{_f(y.within_rho_index)} | {_f(y.within_rho_plain)} | {_f(y.pooled_rho_index)} | "
        f"{_f(y.pooled_rho_plain)} |"
        for y in yardsticks or []
    )
    markers = "\n".join(
        f"- `{m.name}` sign {m.sign:+.0f}: {m.why}" for m in balance.MARKERS.values()
    )
    return f"""# Model card: arousal/inhibition balance index `{balance.BALANCE_VERSION}`

## Definition (METRICS.md "Index scale and states")
Index = weighted mean of the signed personal z-scores of the markers measured that night, each
clipped to ±{balance.CLIP_Z:g}, × 100/3 (−100..100; 0 = the person's usual, < 0 arousal-leaning).
`calibrating` until the lnRMSSD and resting-HR baselines have ≥ 14 chronic days; then `balanced`
while |index| ≤ {balance.BALANCED_BAND:.1f} (the SWC, 0.5 SD), else arousal- / inhibition-leaning.
Confidence = share of the weight measured that night × min(1, n60 / {balance.FULL_HISTORY}).
Weights are renormalised over the markers present; `contributors` lists each marker's value, z,
renormalised weight and signed share of the index.

Markers (whichever `<marker>_z` columns `nightly_features` has):
{markers}

## Estimator
`tunewell.models.balance.BalanceIndex` (scikit-learn `TransformerMixin`/`BaseEstimator`:
parameters untouched in `__init__`, learned `markers_`, `signs_`, `weights_`; `transform` gives
each marker's contribution in index points, `predict` their sum). `check_estimator` passes for
equal and fitted weights (tests/models/test_balance.py). Not applicable: `check_array_api_input`
(numpy-only; skipped without SCIPY_ARRAY_API) and, for a `weights` mapping, the checks that feed
arbitrary widths such as one column (the mapping names its marker columns).

## Weights: equal (literature-fixed)
Every METRICS.md marker counts the same. Fitted non-negative weights (NNLS on the signed clipped
z-scores) were compared with equal weights on people the fit never saw (grouped 5-fold by
person); the fit is adopted only if it beats equal weights by more than twice the standard error
of the per-person differences and reaches a within-person ρ ≥ 0.1.

{HEADER}
{rows}

LifeSnaps (Yfantidou S. et al. 2022, Scientific Data 9:663, CC BY 4.0; odd ids only) gives
momentary mood, which no marker tracks (|ρ| < 0.1): no weighting can be learnt from it. PMData
(CC BY 4.0) has resting HR but no HRV, so only one marker: nothing to weigh. Hence equal weights.
Vendor readiness/recovery scores are never inputs or targets; `tunewell evaluate` reports ρ
against them next to z(lnRMSSD) − z(resting HR). On LifeSnaps, Fitbit's own scores (same
nights, the index with its five markers vs the plain two-marker difference):

{YHEADER}
{ys}

Fitbit's `responsiveness_points_percentage` (its HRV / resting-HR / skin-response component of the
stress score) tracks the index (ρ ≈ 0.2) but tracks the plain z(lnRMSSD) − z(resting HR) a
little better: the extra markers do not bring the index closer to Fitbit's view. The overall
stress and sleep scores do not follow either (|ρ| < 0.1).

## Limits
No labelled dataset here links an autonomic marker set to a validated arousal measure, so the
index is a transparent summary of personal deviations, not a validated stress score. Resting and
sleeping HR are correlated (and the HR dip uses sleeping HR), so heart rate carries about half
of the weight when all six markers are measured.
"""
