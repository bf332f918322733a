"""Late and repeated data: a renamed file, and a newer export that overlaps an older one.

Both happen every week in real use (people re-download their Apple export; a sync folder renames
files), and both must leave the lake as if each record had arrived once.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from tunewell.ingest import runner
from tunewell.lake import store
from tunewell.lake.schemas import SILVER
from tunewell.settings import Settings
from tunewell.synth.apple_health import write_apple
from tunewell.synth.people import simulate
from tunewell.synth.zones import user_settings

MEMBER = "apple_health_export/export.xml"
ONE_LINE_RECORD = re.compile(rb'^\s*<Record [^>]*startDate="(\d{4}-\d{2}-\d{2})[^>]*/>\s*$')


def _ids(lake: Path) -> dict[str, list[str]]:
    out = {}
    for name in SILVER:
        df = store.scan(lake, name).select("record_id").collect()
        out[name] = sorted(df["record_id"].to_list())
    return out


def _older_export(newer: Path, older: Path, cutoff: bytes) -> int:
    """The same account exported earlier: one-line records from ``cutoff`` on are not there
    yet. Returns how many records were held back."""
    held = 0
    with (
        zipfile.ZipFile(newer) as zin,
        zipfile.ZipFile(older, "w", zipfile.ZIP_DEFLATED) as zout,
        zin.open(MEMBER) as src,
        zout.open(MEMBER, "w") as dst,
    ):
        for line in src:
            m = ONE_LINE_RECORD.match(line)
            if m and m.group(1) >= cutoff:
                held += 1
                continue
            dst.write(line)
    return held


@pytest.fixture(scope="module")
def apple(tmp_path_factory) -> tuple[Path, Settings]:
    tmp = tmp_path_factory.mktemp("apple")
    pop = simulate(1, 21, seed=3)
    person = pop.people[0]
    newer = write_apple(pop, person, tmp / "newer")
    user = user_settings(pop, person)
    settings = Settings(lake=tmp / "unused", users={person.user_id: user})
    return newer, settings


def _lake(settings: Settings, lake: Path) -> Settings:
    return Settings(lake=lake, users=dict(settings.users))


def test_a_newer_export_overlapping_an_older_one_adds_only_what_is_new(apple, tmp_path):
    newer, base = apple
    uid = next(iter(base.users))
    older = tmp_path / "older" / "export.zip"
    older.parent.mkdir()
    held = _older_export(newer, older, b"2026-03-20")
    assert held > 100  # the older export really lacks the last days

    both = _lake(base, tmp_path / "both")
    runner.ingest_paths([older], uid, both)
    after_old = sum(len(v) for v in _ids(both.lake).values())
    rep = runner.ingest_paths([newer], uid, both)
    once = _lake(base, tmp_path / "once")
    runner.ingest_paths([newer], uid, once)

    got, want = _ids(both.lake), _ids(once.lake)
    assert got == want  # nothing doubled, nothing lost
    assert sum(len(v) for v in got.values()) > after_old
    assert rep.tables["heart_rate"].inserted > 0


def test_a_renamed_copy_of_a_file_is_recognised_and_adds_nothing(apple, tmp_path):
    newer, base = apple
    uid = next(iter(base.users))
    s = _lake(base, tmp_path / "lake")
    runner.ingest_paths([newer], uid, s)
    before = _ids(s.lake)
    renamed = tmp_path / "Downloads" / "export (1).zip"
    renamed.parent.mkdir()
    shutil.copy(newer, renamed)
    rep = runner.ingest_paths([renamed], uid, s)
    assert [f.status for f in rep.files] == ["already_seen"]
    assert _ids(s.lake) == before
    hr = store.read(s.lake, "heart_rate")
    assert hr.height == hr["record_id"].n_unique()
    assert not hr.filter(pl.col("record_id").is_duplicated()).height
