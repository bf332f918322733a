"""Personal behaviour associations (METRICS.md "Behaviour associations (n-of-1)").

What vendors sell as journal insights, done in the open: for a yes/no tag on day d (a journal
answer, a hard training day, a late bedtime) the next night's outcome (the night that starts at
the end of day d, i.e. sleep date d + 1) is compared between yes and no days as a difference of
means with a seeded bootstrap 95 % CI. An association is shown only with at least five nights on
each side and a CI that excludes 0, and it is always worded as something seen in this person's
own data, never as a cause.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from tunewell.coach.week import PersonData

MIN_NIGHTS = 5
RESAMPLES = 2000
WINDOW_DAYS = 120  # tags and nights considered, ending with the week
HARD_DAY_QUANTILE = 0.75  # hard day = top quartile of the person's daily TRIMP
LATE_BEDTIME_H = 1.0  # late bedtime = onset > own median + 60 min
SOURCE = "METRICS.md Behaviour associations (n-of-1)"


@dataclass(frozen=True)
class Outcome:
    column: str
    table: str  # nightly_features | scores
    label: str
    unit: str
    decimals: int
    higher_is: str  # wording of a positive difference


OUTCOMES: tuple[Outcome, ...] = (
    Outcome("ln_rmssd", "nightly_features", "lnRMSSD", "ln(ms)", 2, "higher"),
    Outcome("resting_hr", "nightly_features", "resting HR", "bpm", 1, "higher"),
    Outcome("balance_index", "scores", "balance index", "points", 0, "higher"),
    Outcome("sleep_quality", "scores", "sleep quality", "of 100", 0, "higher"),
)

# Readable names for tags; journal items not listed read as their item name.
TAG_LABELS = {
    "hard_training_day": "a hard training day",
    "late_bedtime": "a late bedtime",
    "did_you_have_any_alcoholic_drinks": "alcohol",
    "did_you_have_any_caffeine": "caffeine",
    "did_you_view_a_phone_or_other_screen_device_while_in_bed": "a screen in bed",
}


@dataclass(frozen=True)
class Insight:
    tag: str
    tag_label: str
    outcome: str
    outcome_label: str
    unit: str
    n_yes: int
    n_no: int
    mean_yes: float
    mean_no: float
    diff: float
    ci_low: float
    ci_high: float
    shown: bool
    text: str
    source: str = SOURCE

    def to_json(self) -> dict:
        return asdict(self)


def tags(d: PersonData) -> pl.DataFrame:
    """Yes/no tags per day d: ``date``, ``tag``, ``yes``.

    Journal items are the self-report items answered only with 0/1 (WHOOP's journal; any
    PMData-style yes/no item); scaled answers (1–5 wellness scores) are not tags.
    """
    frames = []
    rep = d.reports.filter(pl.col("value").is_not_null())
    if rep.height:
        binary = (
            rep.group_by("item")
            .agg(pl.col("value").is_in([0.0, 1.0]).all().alias("ok"))
            .filter("ok")["item"]
        )
        frames.append(
            rep.filter(pl.col("item").is_in(binary.implode()))
            .group_by("date", "item")
            .agg((pl.col("value").max() > 0).alias("yes"))
            .select("date", pl.col("item").alias("tag"), "yes")
        )
    load = d.load.filter(pl.col("trimp").is_not_null())
    if load.height:
        q = load["trimp"].quantile(HARD_DAY_QUANTILE, "linear")
        frames.append(
            load.select(
                "date",
                pl.lit("hard_training_day").alias("tag"),
                ((pl.col("trimp") >= q) & (pl.col("trimp") > 0)).alias("yes"),
            )
        )
    on = d.nights.filter(pl.col("onset_h").is_not_null())
    if on.height:
        med = on.select(pl.col("onset_h").median()).item()
        frames.append(
            on.select(
                (pl.col("sleep_date") - pl.duration(days=1)).alias("date"),
                pl.lit("late_bedtime").alias("tag"),
                (pl.col("onset_h") > med + LATE_BEDTIME_H).alias("yes"),
            )
        )
    if not frames:
        return pl.DataFrame(schema={"date": pl.Date, "tag": pl.String, "yes": pl.Boolean})
    return pl.concat(frames).sort("tag", "date")


def _outcomes(d: PersonData) -> pl.DataFrame:
    n = d.nights.select("sleep_date", "ln_rmssd", "resting_hr")
    s = d.scores
    if s.height:
        n = n.join(
            s.select("sleep_date", "balance_index", "sleep_quality"), on="sleep_date", how="left"
        )
    else:
        n = n.with_columns(
            pl.lit(None, pl.Float64).alias("balance_index"),
            pl.lit(None, pl.Float64).alias("sleep_quality"),
        )
    return n


def _seed(user: str, tag: str, outcome: str) -> int:
    return int(hashlib.sha256(f"{user}|{tag}|{outcome}".encode()).hexdigest()[:12], 16)


def bootstrap_diff(
    yes: np.ndarray, no: np.ndarray, seed: int, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """Difference of means (yes − no) with a percentile bootstrap 95 % CI, each side resampled."""
    rng = np.random.default_rng(seed)
    by = yes[rng.integers(0, len(yes), (resamples, len(yes)))].mean(axis=1)
    bn = no[rng.integers(0, len(no), (resamples, len(no)))].mean(axis=1)
    lo, hi = np.percentile(by - bn, [2.5, 97.5])
    return float(yes.mean() - no.mean()), float(lo), float(hi)


def _fmt(x: float, dec: int) -> str:
    return f"{x:.{dec}f}".replace("-", "−")


def _sentence(tag_label: str, o: Outcome, r: dict) -> str:
    word = "higher" if r["diff"] > 0 else "lower"
    return (
        f"On the {r['n_yes']} nights after {tag_label} your {o.label} was "
        f"{_fmt(abs(r['diff']), o.decimals)} {o.unit} {word} than on the {r['n_no']} nights "
        f"without (95 % CI {_fmt(r['lo'], o.decimals)} to {_fmt(r['hi'], o.decimals)}). "
        "This is an association in your own data, not proof of a cause."
    )


def insights(d: PersonData, *, all_rows: bool = False) -> list[Insight]:
    """Associations for every tag and outcome; by default only the ones that qualify to show."""
    end = d.week.sunday
    t = tags(d).filter(pl.col("date").is_between(end - timedelta(days=WINDOW_DAYS), end))
    if t.is_empty():
        return []
    oc = _outcomes(d)
    t = t.with_columns((pl.col("date") + pl.duration(days=1)).alias("sleep_date")).join(
        oc, on="sleep_date", how="inner"
    )
    out: list[Insight] = []
    for tag in t["tag"].unique().sort().to_list():
        g = t.filter(pl.col("tag") == tag)
        label = TAG_LABELS.get(tag, tag.replace("_", " "))
        for o in OUTCOMES:
            v = g.filter(pl.col(o.column).is_not_null() & pl.col(o.column).is_finite())
            yes = v.filter("yes")[o.column].to_numpy()
            no = v.filter(~pl.col("yes"))[o.column].to_numpy()
            if len(yes) < 2 or len(no) < 2:
                continue
            diff, lo, hi = bootstrap_diff(yes, no, _seed(d.user_id, tag, o.column))
            shown = len(yes) >= MIN_NIGHTS and len(no) >= MIN_NIGHTS and (lo > 0 or hi < 0)
            if not (shown or all_rows):
                continue
            r = {"diff": diff, "lo": lo, "hi": hi, "n_yes": len(yes), "n_no": len(no)}
            out.append(
                Insight(
                    tag,
                    label,
                    o.column,
                    o.label,
                    o.unit,
                    len(yes),
                    len(no),
                    float(yes.mean()),
                    float(no.mean()),
                    diff,
                    lo,
                    hi,
                    shown,
                    _sentence(label, o, r) if shown else "",
                )
            )
    out.sort(key=lambda i: (not i.shown, -abs(i.diff / (i.ci_high - i.ci_low or math.inf))))
    return out
