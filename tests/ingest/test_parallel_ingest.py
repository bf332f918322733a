"""Files staged in worker processes give the lake a single process gives: same silver rows, same
manifest, same quarantine verdicts and the same run report (the commit stays one writer)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import shared
from tunewell.ingest import runner
from tunewell.lake import manifest, store
from tunewell.lake.store import table_names
from tunewell.settings import Settings, load_settings
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.people import simulate
from tunewell.synth.zones import user_settings


def _lake_state(lake: Path) -> dict[str, object]:
    state: dict[str, object] = {}
    for t in table_names("silver"):
        try:
            df = store.read(lake, t)
        except FileNotFoundError:
            continue
        if df.height:
            state[t] = df.sort("record_id")
    # Every manifest document (file entries and the gold refresh still owed), less its clock time.
    state["manifest"] = sorted(
        json.dumps(_no_time(json.loads(p.read_text())), sort_keys=True)
        for p in (lake / "manifest").rglob("*.json")
    )
    state["quarantine"] = sorted(
        (q.sha256, q.code, q.error, q.stage) for q in manifest.quarantined(lake)
    )
    return state


def _no_time(doc: object) -> object:
    return {k: v for k, v in doc.items() if k != "at"} if isinstance(doc, dict) else doc


def _report(rep: runner.RunReport) -> list[tuple]:
    return [
        (f.file, f.sha256, f.format, str(f.status), sorted(f.rows.items()), f.error, f.code)
        for f in rep.files
    ]


def _assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        if isinstance(v, pl.DataFrame):
            assert_frame_equal(v, b[k])  # type: ignore[arg-type]
        else:
            assert v == b[k], k


@pytest.mark.slow
def test_two_workers_write_the_lake_one_process_writes(tmp_path: Path) -> None:
    pop = simulate(1, days=6, seed=5)
    person = pop.people[0]
    inbox = tmp_path / "in"
    write_garmin(pop, person, inbox)
    (inbox / "broken.fit").write_bytes(b"\x0e\x10\x00\x00\x40\x00\x00\x00.FIT" + b"\x00" * 20)
    (inbox / "notes.txt").write_text("not an export\n")
    user = user_settings(pop, person)
    runs = {}
    for n in (1, 2):
        s = Settings(lake=tmp_path / f"lake{n}", users={user.user_id: user})
        rep = runner.ingest_paths([inbox], user.user_id, s, workers=n)
        runs[n] = (_report(rep), rep.to_dict()["tables"], _lake_state(s.lake))
    assert runs[1][0] == runs[2][0]
    assert runs[1][1] == runs[2][1]
    assert any(status == "quarantined" for _, _, _, status, *_ in runs[1][0])
    assert {"heart_rate", "rr_interval", "sleep_stage", "steps", "vitals"} <= runs[1][2].keys()
    _assert_same(runs[1][2], runs[2][2])  # type: ignore[arg-type]


@pytest.mark.realdata
@pytest.mark.slow
def test_real_fit_files_in_two_workers_as_in_one(tmp_path: Path) -> None:
    folder = shared("fit")
    states = []
    for n in (1, 2):
        s = Settings(lake=tmp_path / f"lake{n}")
        rep = runner.ingest_paths([folder], "u1", s, workers=n)
        states.append((_report(rep), _lake_state(s.lake)))
    assert states[0][0] == states[1][0]
    _assert_same(states[0][1], states[1][1])


def test_workers_setting_is_validated(tmp_path: Path) -> None:
    cfg = tmp_path / "tunewell.toml"
    cfg.write_text("[ingest]\nworkers = 2\n")
    assert load_settings(cfg).ingest_workers == 2
    cfg.write_text("[ingest]\nworkers = 0\n")
    with pytest.raises(ValueError, match=r"ingest\.workers"):
        load_settings(cfg)
    cfg.write_text("[ingest]\nthreads = 2\n")
    with pytest.raises(ValueError, match=r"ingest\.threads: unknown key"):
        load_settings(cfg)
