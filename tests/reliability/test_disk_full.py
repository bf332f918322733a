"""Disk full and read-only lake: a clear error naming the path, no partial file visible, the
lake as consistent as before, and the next run (space back) ends where a clean run ends."""

from __future__ import annotations

import errno
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.reliability.harness import diff, lake_digest, strays
from tunewell.features.refresh import refresh_gold
from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.pipelines import quality
from tunewell.settings import Settings, UserSettings
from tunewell.synth.hostile import apple_xml, fit_file

pytestmark = pytest.mark.xdist_group("disk")


def _sleep(day: int) -> str:
    """One staged Apple night (00:00-04:00 UTC on ``day``), so the gold tables get rows."""
    stages = [("AsleepCore", "00:00", "01:30"), ("AsleepDeep", "01:30", "02:30")]
    stages.append(("AsleepREM", "02:30", "04:00"))
    return "".join(
        '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch" '
        f'startDate="2026-05-{day:02d} {s}:00 +0000" endDate="2026-05-{day:02d} {e}:00 +0000" '
        f'value="HKCategoryValueSleepAnalysis{stage}"/>\n'
        for stage, s, e in stages
    )


def _inputs(root: Path) -> tuple[Path, Path]:
    """Two deliveries: the first lands before the disk fills, the second hits the full disk."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    (a / "export.xml").write_bytes(apple_xml(30, extra=_sleep(1) + _sleep(2)))
    second = apple_xml(40, extra=_sleep(3) + _sleep(4)).replace(b"08:", b"09:")
    (b / "export.xml").write_bytes(second)
    (b / "activity.fit").write_bytes(fit_file(30))
    (b / "broken.json").write_text('[{"a": 1,')  # a quarantine copy is a write too
    with zipfile.ZipFile(b / "more.zip", "w") as zf:
        zf.writestr("export.xml", apple_xml(10).replace(b"08:", b"10:"))
    return a, b


def _settings(lake: Path) -> Settings:
    return Settings(lake=lake, users={"u1": UserSettings("u1", tz="UTC")})


def _run(paths: list[Path], lake: Path) -> None:
    settings = _settings(lake)
    report = runner.ingest_paths(paths, "u1", settings)
    refresh_gold(settings)
    quality.write_report(quality.build_report(report, settings), lake)


def _readable(lake: Path) -> None:
    for p in lake.rglob("*.parquet"):
        store.pq.read_table(p)  # every visible file is whole


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk")
    a, b = _inputs(root)
    before = root / "before"
    _run([a], before)
    ref = root / "ref"
    shutil.copytree(before, ref)
    _run([b], ref)
    return root, a, b, before, lake_digest(ref)


def _count_writes(monkeypatch, lake: Path, b: Path) -> int:
    n = 0
    real = store._write_all

    def counting(fd, data):
        nonlocal n
        n += 1
        real(fd, data)

    monkeypatch.setattr(store, "_write_all", counting)
    _run([b], lake)
    monkeypatch.setattr(store, "_write_all", real)
    return n


def test_enospc_at_every_write_site(deliveries, monkeypatch, tmp_path):
    _, _, b, before, reference = deliveries
    probe = tmp_path / "probe"
    shutil.copytree(before, probe)
    writes = _count_writes(monkeypatch, probe, b)
    assert writes >= 10  # staging, silver, manifest, quarantine, gold, report
    real = store._write_all
    # Every write when few, else 12 spread over the run (first and last included).
    picks = sorted({1, writes, *range(1, writes + 1, max(writes // 10, 1))})
    for k in picks:
        lake = tmp_path / f"lake{k}"
        shutil.copytree(before, lake)
        seen = 0

        def full(fd, data, k=k):
            nonlocal seen
            seen += 1
            if seen >= k:  # the disk stays full once it is full
                raise OSError(errno.ENOSPC, "No space left on device")
            real(fd, data)

        monkeypatch.setattr(store, "_write_all", full)
        with pytest.raises(store.LakeWriteError) as err:
            _run([b], lake)
        msg = str(err.value)
        assert "No space left on device" in msg and str(lake) in msg, msg
        assert lake in err.value.path.parents
        monkeypatch.setattr(store, "_write_all", real)
        assert not list(lake.rglob("*.tmp")), f"write {k}: a temporary file is visible"
        _readable(lake)
        _run([b], lake)  # space is back
        assert diff(reference, lake_digest(lake)) == [], f"write {k} of {writes}"
        assert strays(lake) == []
        shutil.rmtree(lake)


def _mount(path: Path, opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
    )
    return res.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    if not _mount(mnt, "size=4m,mode=0700"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_tmpfs_then_space_back(deliveries, tmpfs):
    _, a, b, _, reference = deliveries
    lake = tmpfs / "lake"
    _run([a], lake)
    filler = tmpfs / "filler"
    with filler.open("wb") as fh:  # fill the file system to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with pytest.raises(store.LakeWriteError, match="No space left on device"):
        _run([b], lake)
    assert not list(lake.rglob("*.tmp"))
    _readable(lake)
    filler.unlink()
    _run([b], lake)
    assert diff(reference, lake_digest(lake)) == []


def test_read_only_lake_says_so(deliveries, tmpfs):
    _, a, b, _, _ = deliveries
    lake = tmpfs / "lake"
    _run([a], lake)
    before = lake_digest(lake)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        with pytest.raises(store.LakeWriteError, match="Read-only file system") as err:
            _run([b], lake)
        assert str(lake) in str(err.value)
        assert lake_digest(lake) == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    _run([b], lake)
