"""Sleep-quality score: unstaged nights, rule flags, model files, training and evaluation."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import shared
from tunewell.models import sleep_quality as sq
from tunewell.models.score import default_sleep_model


def _night(n: int = 1, **cols) -> pl.DataFrame:
    base = {
        "user_id": ["u"] * n,
        "sleep_date": [date(2026, 1, 1) + timedelta(days=i) for i in range(n)],
        "sleep_ok": [True] * n,
        "tst_min": [450.0] * n,
        "efficiency_pct": [92.0] * n,
        "waso_min": [15.0] * n,
        "sol_min": [10.0] * n,
        "awakenings": [1] * n,
        "deep_min": [80.0] * n,
        "tst_min_mu60": [None] * n,
        "tst_min_swc": [None] * n,
        "sri": [None] * n,
        "bedtime_sd_min": [None] * n,
        "waketime_sd_min": [None] * n,
    }
    base.update(cols)
    return pl.DataFrame(base, schema_overrides={"awakenings": pl.Int32})


def _synthetic_training(n_people: int = 4, n: int = 60, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_people):
        tst = rng.normal(430, 50, n)
        y = np.clip(np.round(3 + (tst - 430) / 50 + rng.normal(0, 0.7, n)), 1, 5)
        rows.append(
            _night(
                n,
                user_id=[f"p{p}"] * n,
                tst_min=list(tst),
                deep_min=[None if i % 5 == 0 else 70.0 for i in range(n)],
            ).with_columns(pl.Series("y", y), pl.lit(60.0 + p).alias("yardstick"))
        )
    return sq.night_inputs(pl.concat(rows))


def test_a_night_without_stages_gets_a_score():
    model = default_sleep_model()
    nights = _night(2, deep_min=[80.0, None])
    out = sq.sleep_quality_frame(nights, model.bundle)
    assert out["sleep_quality_basis"].to_list() == ["staged", "unstaged"]
    assert out["sleep_quality"].null_count() == 0
    assert out["sleep_quality"].is_between(0, 100).all()
    none = sq.sleep_quality_frame(_night(1, tst_min=[None], deep_min=[None]), model.bundle)
    assert none["sleep_quality"][0] is None and none["sleep_quality_basis"][0] is None


def test_longer_sleep_scores_higher():
    b = default_sleep_model().bundle
    out = sq.sleep_quality_frame(_night(3, tst_min=[300.0, 420.0, 500.0]), b)
    s = out["sleep_quality"].to_list()
    assert s[0] < s[1] < s[2]


def test_rule_flags_follow_the_metrics_thresholds():
    f = sq.rule_flags(
        _night(
            4,
            tst_min=[410.0, 440.0, 440.0, None],
            tst_min_mu60=[None, 500.0, 450.0, None],
            tst_min_swc=[None, 20.0, 20.0, None],
            efficiency_pct=[84.9, 85.0, 90.0, None],
            sol_min=[31.0, 30.0, 5.0, None],
            awakenings=[2, 1, None, None],
            waso_min=[10.0, 21.0, None, None],
            sri=[79.0, None, 85.0, None],
            bedtime_sd_min=[None, 61.0, 30.0, None],
        )
    )
    assert f["flag_short_sleep"].to_list() == [True, True, False, None]
    assert f["flag_low_efficiency"].to_list() == [True, False, False, None]
    assert f["flag_long_latency"].to_list() == [True, False, False, None]
    assert f["flag_fragmented"].to_list() == [True, True, None, None]
    assert f["flag_irregular"].to_list() == [True, True, False, None]


def test_shipped_model_loads_with_the_trusted_type_check():
    path = sq.default_model_path()
    bundle, version = sq.load_bundle(path)
    manifest = json.loads(sq.manifest_path(path).read_text())
    assert version == manifest["version"] == sq.MODEL_VERSION
    assert tuple(manifest["unstaged_features"]) == sq.UNSTAGED_FEATURES
    assert tuple(manifest["staged_features"]) == sq.STAGED_FEATURES
    assert path.stat().st_size < 200_000
    assert manifest["grouped_cv"]["n_people"] == 8
    assert set(bundle) >= {"staged", "unstaged", "offset"}


def test_tampered_model_file_is_refused(tmp_path):
    bundle = sq.fit_model(_synthetic_training())
    path = sq.save_bundle(bundle, tmp_path / "m.skops", "t-1")
    assert sq.load_bundle(path)[1] == "t-1"
    # 1) bytes changed after training: hash differs from the manifest
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.skops"
    bad.write_bytes(bytes(raw))
    sq.manifest_path(bad).write_text(sq.manifest_path(path).read_text())
    with pytest.raises(sq.ModelFileError, match=r"SHA-256 .* differs from the manifest"):
        sq.load_bundle(bad)
    # 2) a type outside the trusted set slipped in (and the manifest re-signed to match)
    evil = tmp_path / "evil.skops"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(evil, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                data = data.replace(b'"sklearn.linear_model._ridge"', b'"os"', 1).replace(
                    b'"Ridge"', b'"system"', 1
                )
            zout.writestr(item, data)
    m = json.loads(sq.manifest_path(path).read_text())
    m["sha256"] = sq.file_sha256(evil)
    sq.manifest_path(evil).write_text(json.dumps(m))
    with pytest.raises(sq.ModelFileError, match=r"refusing to load types .*os\.system"):
        sq.load_bundle(evil)
    # 3) no manifest at all
    sq.manifest_path(path).unlink()
    with pytest.raises(sq.ModelFileError, match="missing"):
        sq.load_bundle(path)


def test_grouped_evaluation_never_scores_a_person_with_their_own_data(monkeypatch):
    frame = _synthetic_training(n_people=4)
    seen: list[set[str]] = []
    real_fit = sq.fit_model

    def spy(train, alpha=sq.ALPHA):
        seen.append(set(train["user_id"].unique()))
        return real_fit(train, alpha)

    monkeypatch.setattr(sq, "fit_model", spy)
    ev = sq.evaluate_lopo(frame)
    assert [f.person for f in ev.folds] == ["p0", "p1", "p2", "p3"]
    for fold, people in zip(ev.folds, seen, strict=True):
        assert fold.person not in people and len(people) == 3
    assert ev.pooled_rho_ours > 0.3  # tst drives y here
    assert ev.mae_vendor is not None


def test_personal_calibration_is_judged_on_later_nights_only():
    frame = _synthetic_training(n_people=1, n=90, seed=2)
    base = sq.fit_model(_synthetic_training(n_people=3, seed=5))
    res, model = sq.fit_personal(base, frame)
    assert res.n_past == 60 and res.n_future == 30
    assert res.used == (res.mae_personal < res.mae_default)
    assert (model is not None) == res.used
    few, none = sq.fit_personal(base, frame.head(10))
    assert not few.used and none is None and "needs 30" in few.reason


@pytest.mark.realdata
@pytest.mark.slow
def test_retraining_on_a_subset_runs_the_shipped_pipeline(tmp_path):
    from tunewell.pipelines.train import train_default

    r = train_default(shared("pmdata"), tmp_path, people=["p01", "p02", "p03"])
    assert r.people == ["p01", "p02", "p03"]
    assert [f.person for f in r.evaluation.folds] == r.people
    bundle, version = sq.load_bundle(r.model_path)
    shipped = json.loads(sq.manifest_path(sq.default_model_path()).read_text())
    mine = json.loads(sq.manifest_path(r.model_path).read_text())
    assert version == shipped["version"]
    for k in ("staged_features", "unstaged_features", "alpha"):
        assert mine[k] == shipped[k]
    assert set(bundle) == set(default_sleep_model().bundle)
    assert "p01, p02, p03" in r.card_path.read_text()


@pytest.fixture(scope="module")
def pmdata_lake(tmp_path_factory) -> Path:
    from tunewell.pipelines.train import ingest_pmdata

    lake = tmp_path_factory.mktemp("pm") / "lake"
    ingest_pmdata(shared("pmdata"), lake)
    return lake


@pytest.mark.realdata
@pytest.mark.slow
def test_pmdata_evaluation_numbers_and_the_shipped_file_match(pmdata_lake):
    from tunewell.pipelines.train import training_frame

    frame = training_frame(pmdata_lake)
    ev = sq.evaluate_lopo(frame)
    # measured: pooled ρ 0.377 vs Fitbit 0.341, within-person 0.316 vs 0.304, MAE 0.537 vs 0.569
    assert ev.n_people == 8 and ev.n_nights > 800
    assert ev.pooled_rho_vendor == pytest.approx(0.34, abs=0.02)
    assert ev.pooled_rho_ours > ev.pooled_rho_vendor
    assert ev.within_rho_ours > ev.within_rho_vendor
    assert ev.mae_ours < ev.mae_vendor
    shipped = json.loads(sq.manifest_path(sq.default_model_path()).read_text())["grouped_cv"]
    assert ev.pooled_rho_ours == pytest.approx(shipped["pooled_rho_ours"], abs=1e-9)
    # the full fit reproduces the shipped model's predictions
    mine = sq.predict_1to5(sq.fit_model(frame), frame)[0]
    ref = sq.predict_1to5(default_sleep_model().bundle, frame)[0]
    np.testing.assert_allclose(mine, ref, atol=1e-9)


@pytest.mark.realdata
@pytest.mark.slow
def test_evaluate_report_on_pmdata(pmdata_lake):
    from tunewell.models.evaluate import evaluate_lake, render_markdown

    rep = evaluate_lake(pmdata_lake)
    md = render_markdown(rep)
    assert "| **pooled** | " in md and "p08" in md
    # PMData has no HRV and no heart-rate samples: no balance index, so nothing to compare
    assert rep.balance == []
