"""FIT files staged in batches (``runner.stage_files``: decoded one by one, conformed and written
together) give the lake that staging each file alone (``runner.stage_file``) gives, and a bad
file in the middle of a batch is quarantined alone, with an error naming it, while the files
around it keep their rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.ingest.test_parallel_ingest import _assert_same, _lake_state
from tunewell.ingest import runner
from tunewell.ingest.formats import garmin_fit
from tunewell.lake.manifest import FileStatus, sha256_file
from tunewell.settings import Settings
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.people import simulate
from tunewell.synth.zones import user_settings


@pytest.fixture(scope="module")
def person_files(tmp_path_factory: pytest.TempPathFactory):
    pop = simulate(1, days=4, seed=11)
    person = pop.people[0]
    inbox = tmp_path_factory.mktemp("fit") / "in"
    write_garmin(pop, person, inbox)
    return user_settings(pop, person), sorted(inbox.glob("*.fit"))


def _stage_alone(cands: list[runner.Candidate], s: Settings) -> list[runner.StagedFile]:
    out = []
    for c in cands:
        out += runner.stage_file(c.path, s.user(c.user_id), s, display=c.display)
    return out


def _cands(files: list[Path], user_id: str) -> list[runner.Candidate]:
    return [runner.Candidate(f, str(f), user_id) for f in files]


def test_a_corrupt_file_mid_batch_is_quarantined_alone(person_files, tmp_path: Path) -> None:
    user, files = person_files
    bad = tmp_path / "broken.fit"
    good = files[len(files) // 2].read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # a cut-off copy: the header promises more bytes
    ordered = [*files[: len(files) // 2], bad, *files[len(files) // 2 :]]
    cands = _cands(ordered, user.user_id)
    states = {}
    for how in ("batch", "alone"):
        s = Settings(lake=tmp_path / how, users={user.user_id: user})
        if how == "batch":
            staged = [f for group in runner.stage_files(cands, s, {}, False) for f in group]
            parts = {p for f in staged for ps in f.tables.values() for p in ps}
            # one staged part per table for the batch, not one per file and table
            assert len(parts) < len(files)
        else:
            staged = _stage_alone(cands, s)
        by_name = {Path(f.result.file).name: f.result for f in staged}
        broken = by_name.pop("broken.fit")
        assert broken.status == FileStatus.QUARANTINED
        assert broken.error.startswith(str(bad)) and "unexpected end of file" in broken.error
        assert all(r.status == FileStatus.STAGED for r in by_name.values())
        rep = runner.commit(staged, s)
        rows = {Path(f.file).name: f.rows for f in rep.files}
        assert all(sum(rows[f.name].values()) > 0 for f in files)  # nobody lost their rows
        states[how] = (sorted((f.file, str(f.status), sorted(f.rows.items())) for f in rep.files),)
        states[how] += (_lake_state(s.lake),)
    assert states["batch"][0] == states["alone"][0]
    _assert_same(states["batch"][1], states["alone"][1])  # type: ignore[arg-type]
    assert {"heart_rate", "sleep_stage", "sleep_episode", "hrv"} <= states["batch"][1].keys()
    # every stage points at its own night's episode, as when each file was conformed alone
    stages, episodes = states["batch"][1]["sleep_stage"], states["batch"][1]["sleep_episode"]
    assert isinstance(stages, pl.DataFrame) and isinstance(episodes, pl.DataFrame)
    assert set(stages["episode_id"]) == set(episodes["record_id"])


def test_a_file_that_fails_conform_in_a_batch_is_found_and_quarantined_alone(
    person_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conform over the gathered files fails: each file is then conformed alone, and only the
    one at fault is quarantined, with its own error; the others are staged as if alone."""
    user, files = person_files
    cands = _cands(files, user.user_id)
    s = Settings(lake=tmp_path / "lake", users={user.user_id: user})
    victim = files[1]
    victim_sha = sha256_file(victim)
    real = garmin_fit.conform_frames

    def picky(parts, user):
        parts = list(parts)
        if any(df["source_file"][0] == victim_sha for _, df in parts):
            raise ValueError("a value conform cannot cast")
        return real(parts, user)

    monkeypatch.setattr(garmin_fit, "conform_frames", picky)
    staged = [f for group in runner.stage_files(cands, s, {}, False) for f in group]
    results = {Path(f.result.file).name: f.result for f in staged}
    hit = results.pop(victim.name)
    assert hit.status == FileStatus.QUARANTINED
    assert hit.error == f"{victim}: ValueError: a value conform cannot cast"
    assert all(r.status == FileStatus.STAGED and not r.error for r in results.values())
    rep = runner.commit(staged, s)
    monkeypatch.setattr(garmin_fit, "conform_frames", real)
    alone = Settings(lake=tmp_path / "alone", users={user.user_id: user})
    runner.commit(
        _stage_alone(_cands([f for f in files if f != victim], user.user_id), alone), alone
    )
    got, want = _lake_state(s.lake), _lake_state(alone.lake)
    for table in set(got) - {"manifest", "quarantine"}:
        assert got[table].equals(want[table]), table  # type: ignore[union-attr]
    assert sum(f.status == FileStatus.INGESTED for f in rep.files) == len(files) - 1


@pytest.mark.slow
def test_with_workers_the_validations_are_done_while_staging(
    person_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With worker processes, this process validates what they stage as it arrives: commit
    then finds every batch it would validate already done, and the lake, the report and the
    row counts are those of a run in one process."""
    user, files = person_files
    cands = _cands(files, user.user_id)
    monkeypatch.setattr(runner, "SPILL_ROWS", 700)  # several validation batches per table
    runs = {}
    for n in (1, 2):
        s = Settings(lake=tmp_path / f"lake{n}", users={user.user_id: user})
        staged = [f for fs in runner.stage_candidates(cands, s, {}, False, workers=n) for f in fs]
        parts: dict[str, list[Path]] = {}
        for f in staged:
            for tbl, ps in f.tables.items():
                parts.setdefault(tbl, []).extend(p for p in ps if p not in parts.get(tbl, []))
        batches = {(t, tuple(b)) for t, ps in parts.items() for b in runner._batches(ps, 700)}
        done = {k for f in staged for k in f.checked}
        assert done == (batches if n == 2 else set())
        assert len(batches) > len(parts)
        rep = runner.commit(staged, s)
        runs[n] = (
            sorted((f.file, str(f.status), sorted(f.rows.items())) for f in rep.files),
            rep.to_dict()["tables"],
            rep.validated,
            _lake_state(s.lake),
        )
    assert runs[1][:3] == runs[2][:3]
    _assert_same(runs[1][3], runs[2][3])  # type: ignore[arg-type]
