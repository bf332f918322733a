"""Training and evaluation flows: PMData → temporary lake → features → model file + model cards.

The training data go through the same path users' files take (the ingest runner, then the
feature build), so the model sees features exactly as the nightly flow computes them. Each flow
line is a task calling a plain function tested without Prefect.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.models import cards, evaluate, score, sleep_quality, weights_study
from tunewell.settings import Settings, UserSettings, load_settings

PMDATA_FILES = ("fitbit/sleep.json", "fitbit/sleep_score.csv", "pmsys/wellness.csv")
PMDATA_TZ = "Europe/Oslo"  # Simula, Oslo


def ingest_pmdata(root: Path, lake: Path, people: list[str] | None = None) -> Settings:
    """Ingest PMData participants (sleep, Fitbit sleep score, wellness) and build features."""
    root = Path(root)
    ids = people or sorted(p.name for p in root.iterdir() if (p / "pmsys").exists())
    s = Settings(lake=Path(lake), users={u: UserSettings(u, tz=PMDATA_TZ) for u in ids})
    for u in ids:
        files = [root / u / f for f in PMDATA_FILES if (root / u / f).exists()]
        runner.ingest_paths(files, u, s)
    refresh_gold(s)
    return s


def training_frame(lake: Path) -> pl.DataFrame:
    return sleep_quality.training_frame(
        store.read(lake, "nightly_features"),
        store.read(lake, "self_report"),
        store.read(lake, "vendor_score"),
    )


@dataclass
class TrainResult:
    model_path: Path
    card_path: Path
    evaluation: sleep_quality.Evaluation
    people: list[str]


def train_default(
    pmdata: Path,
    out_dir: Path,
    *,
    people: list[str] | None = None,
    lake: Path | None = None,
    version: str = sleep_quality.MODEL_VERSION,
) -> TrainResult:
    """Fit the default sleep-quality model on PMData, evaluate it grouped by person, save it."""
    with tempfile.TemporaryDirectory(prefix="tunewell-train-") as tmp:
        lk = Path(lake) if lake else Path(tmp) / "lake"
        ingest_pmdata(pmdata, lk, people)
        frame = training_frame(lk)
    ev = sleep_quality.evaluate_lopo(frame)
    bundle = sleep_quality.fit_model(frame)
    ids = sorted(frame["user_id"].unique().to_list())
    path = sleep_quality.save_bundle(
        bundle,
        Path(out_dir) / f"{sleep_quality.MODEL_NAME}.skops",
        version,
        {
            "trained_on": f"PMData {', '.join(ids)} (CC BY 4.0)",
            "n_nights": frame.height,
            "alpha": sleep_quality.ALPHA,
            "grouped_cv": ev.to_dict(),
        },
    )
    card = Path(out_dir) / f"MODEL_CARD_{sleep_quality.MODEL_NAME}.md"
    card.write_text(cards.sleep_quality_card(ev, version, ids))
    return TrainResult(path, card, ev, ids)


def write_balance_card(shared_data: Path, out_dir: Path) -> Path:
    path = Path(out_dir) / "MODEL_CARD_balance.md"
    path.write_text(
        cards.balance_card(
            weights_study.run(shared_data), weights_study.run_yardsticks(shared_data)
        )
    )
    return path


def train_personal(settings: Settings, user: str) -> sleep_quality.PersonalResult:
    """Personal calibration from the person's own self-reports, kept only if it wins forward in
    time; an accepted model is saved in the lake and the person's nights are rescored."""
    lake = Path(settings.lake)
    user = settings.lake_id(user)  # the id the lake stores (pseudonymised when configured)
    frame = sleep_quality.training_frame(
        store.scan(lake, "nightly_features", [user]).collect(),
        store.scan(lake, "self_report", [user]).collect(),
    )
    default = score.default_sleep_model()
    res, bundle = sleep_quality.fit_personal(default.bundle, frame)
    path = score.personal_model_path(lake, user)
    if bundle is not None:
        sleep_quality.save_bundle(
            bundle, path, f"{default.version}+personal-{user}", {"personal": res.__dict__}
        )
    elif path.exists():
        path.unlink()
        sleep_quality.manifest_path(path).unlink(missing_ok=True)
    score.rescore(settings, [user])
    return res


def evaluate_lake(lake: Path, pmdata: Path | None = None) -> tuple[evaluate.Report, Path]:
    """Evaluate on ``lake``; with ``pmdata``, ingest those participants into it first."""
    if pmdata is not None:
        ingest_pmdata(pmdata, lake)
    rep = evaluate.evaluate_lake(lake)
    return rep, evaluate.write_report(rep, lake)


# ----------------------------------------------------------------------------- flows
@task(cache_policy=NO_CACHE)
def t_train_default(pmdata: Path, out_dir: Path) -> TrainResult:
    return train_default(pmdata, out_dir)


@task(cache_policy=NO_CACHE)
def t_balance_card(shared_data: Path, out_dir: Path) -> Path:
    return write_balance_card(shared_data, out_dir)


@task(cache_policy=NO_CACHE)
def t_train_personal(settings: Settings, user: str) -> sleep_quality.PersonalResult:
    return train_personal(settings, user)


@task(cache_policy=NO_CACHE)
def t_evaluate(lake: Path, pmdata: Path | None) -> tuple[evaluate.Report, Path]:
    return evaluate_lake(lake, pmdata)


@flow(name="tunewell-train", log_prints=True)
def train(
    shared_data: str, out_dir: str, user: str | None = None, config: str | None = None,
    lake: str | None = None,
) -> dict:  # fmt: skip
    """Default models from the shared data, or (``user``) a personal calibration on the lake."""
    if user:
        res = t_train_personal(load_settings(config, lake), user)
        return {"personal": res}
    # Submitted, not called: the two are independent, so the flow's task runner (threads, or a
    # Dask cluster with --runner dask) runs them side by side.
    r = t_train_default.submit(Path(shared_data) / "pmdata", Path(out_dir))
    card = t_balance_card.submit(Path(shared_data), Path(out_dir))
    return {"default": r.result(), "balance_card": card.result()}


@flow(name="tunewell-evaluate", log_prints=True)
def evaluate_flow(lake: str, pmdata: str | None = None) -> dict:
    rep, path = t_evaluate(Path(lake), Path(pmdata) if pmdata else None)
    return {"report": rep, "path": path}
