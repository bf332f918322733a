"""What ``tunewell evaluate`` measures on a lake: both models against people and vendors.

Sleep quality: leave-one-person-out against next-morning self-reports, beside Fitbit's own
``overall_score`` on exactly the same nights. Balance index: per person, Spearman ρ against every
vendor readiness/recovery/sleep score in the lake, next to the plain z(lnRMSSD) − z(resting HR),
so the report shows whether the extra markers and weights add anything. Vendor scores are read
here, and only here, as yardsticks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from tunewell.lake import store
from tunewell.models import balance, sleep_quality

MIN_PAIRS = 10


@dataclass
class VendorRho:
    user_id: str
    vendor: str
    name: str
    n: int
    rho_index: float | None
    rho_plain: float | None


@dataclass
class Report:
    sleep: sleep_quality.Evaluation | None
    sleep_note: str
    balance: list[VendorRho] = field(default_factory=list)
    balance_note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_PAIRS or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return None
    return float(spearmanr(a[ok], b[ok]).statistic)


def plain_index(nightly: pl.DataFrame) -> pl.Expr:
    """The yardstick index: z(lnRMSSD) − z(resting HR), no weights, no other markers."""
    return (pl.col("ln_rmssd_z") - pl.col("resting_hr_z")).alias("plain")


def balance_vs_vendors(nightly: pl.DataFrame, vendor_score: pl.DataFrame) -> list[VendorRho]:
    """Per person and vendor score: ρ of our index and of the plain index (≥ 10 shared nights)."""
    if nightly.height == 0 or vendor_score.height == 0:
        return []
    idx = balance.balance_frame(nightly).select("user_id", "sleep_date", "balance_index")
    idx = idx.join(
        nightly.select("user_id", "sleep_date", plain_index(nightly)),
        on=["user_id", "sleep_date"],
    )
    vs = vendor_score.select(
        "user_id", pl.col("date").alias("sleep_date"), "vendor", "name", "value"
    ).filter(pl.col("value").is_not_null())
    j = idx.join(vs, on=["user_id", "sleep_date"])
    out = []
    for (uid, vendor, name), g in j.group_by("user_id", "vendor", "name", maintain_order=True):
        v = g["value"].to_numpy().astype(float)
        a = g["balance_index"].to_numpy().astype(float)
        p = g["plain"].to_numpy().astype(float)
        n = int((np.isfinite(a) & np.isfinite(v)).sum())
        if n == 0:
            continue
        out.append(VendorRho(str(uid), str(vendor), str(name), n, _rho(a, v), _rho(p, v)))
    return sorted(out, key=lambda r: (r.user_id, r.vendor, r.name))


def evaluate_lake(lake: Path) -> Report:
    nightly = store.read(lake, "nightly_features")
    reports = store.read(lake, "self_report")
    vendor = store.read(lake, "vendor_score")
    frame = sleep_quality.training_frame(nightly, reports, vendor)
    sleep, note = None, ""
    if frame["user_id"].n_unique() >= 2:
        sleep = sleep_quality.evaluate_lopo(frame)
        note = (
            f"leave-one-person-out on {sleep.n_nights} nights of {sleep.n_people} people "
            f"with a self-reported {sleep_quality.TARGET_ITEM}"
            + (" and a Fitbit overall_score" if sleep.pooled_rho_vendor is not None else "")
        )
    else:
        note = "needs self-reported sleep_quality from at least two people"
    rhos = balance_vs_vendors(nightly, vendor)
    bnote = (
        f"{len(rhos)} person × vendor-score pairs"
        if rhos
        else "no vendor score shares nights with a balance index in this lake"
    )
    return Report(sleep, note, rhos, bnote)


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def render_markdown(rep: Report) -> str:
    lines = ["# tunewell evaluation", "", "## Sleep-quality score", "", rep.sleep_note, ""]
    e = rep.sleep
    if e is not None:
        lines += [
            "| person | nights | ρ ours | ρ Fitbit | MAE ours | MAE Fitbit (1–5) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {f.person} | {f.n} | {_f(f.rho_ours)} | {_f(f.rho_vendor)} | "
            f"{_f(f.mae_ours)} | {_f(f.mae_vendor)} |"
            for f in e.folds
        ]
        lines += [
            f"| **pooled** | {e.n_nights} | {_f(e.pooled_rho_ours)} | "
            f"{_f(e.pooled_rho_vendor)} | {_f(e.mae_ours)} | {_f(e.mae_vendor)} |",
            f"| **mean within-person** | | {_f(e.within_rho_ours)} | "
            f"{_f(e.within_rho_vendor)} | | |",
            "",
            "Fitbit's 0–100 score is mapped to 1–5 by a line fitted on the training people of "
            "each fold (for MAE only; ρ is scale-free).",
            "",
        ]
    lines += ["## Balance index against vendor scores", "", rep.balance_note, ""]
    if rep.balance:
        lines += [
            "| person | vendor | score | nights | ρ index | ρ z(lnRMSSD) − z(RHR) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.user_id} | {r.vendor} | {r.name} | {r.n} | {_f(r.rho_index)} | "
            f"{_f(r.rho_plain)} |"
            for r in rep.balance
        ]
    return "\n".join(lines) + "\n"


def write_report(rep: Report, lake: Path) -> Path:
    out = Path(lake) / "reports"
    out.mkdir(parents=True, exist_ok=True)
    md = out / "evaluation.md"
    md.write_text(render_markdown(rep))
    (out / "evaluation.json").write_text(json.dumps(rep.to_dict(), indent=1, default=str))
    return md
