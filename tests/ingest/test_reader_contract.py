"""Every registered reader passes one contract, in the style of sklearn's parametrize_with_checks.

The checks are generic: a new module in ``ingest.formats`` is picked up by ``registry.readers()``
and must name a sample file below (synthetic from ``src/synth`` where a writer exists, else a real
file from ../shared/data, which skips when absent). For each reader:

- its ``SOURCE`` is a source name with a priority in the default settings;
- its sniffer claims its own sample, never raises, and rejects every other format's sample, an
  empty file and random bytes;
- ``read`` yields only contract tables, with exactly the contract's columns and types;
- it survives an empty file and a truncated sample: it yields contract frames or raises an
  ``Exception`` with a message (which the runner turns into a quarantine), nothing worse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import shared
from tunewell.ingest import registry
from tunewell.ingest.base import FileContext, Reader
from tunewell.lake.frames import polars_schema
from tunewell.lake.schemas import SILVER
from tunewell.settings import DEFAULT_PRIORITY, UserSettings
from tunewell.synth.apple_health import write_apple
from tunewell.synth.fitbit import write_fitbit
from tunewell.synth.gadgetbridge import write_gadgetbridge
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.labs import write_lab_csv
from tunewell.synth.oura import write_oura
from tunewell.synth.people import simulate
from tunewell.synth.whoop import write_whoop

USER = UserSettings("p001", tz="Europe/Berlin")


def _pick(paths: list[Path], word: str) -> Path:
    return next(p for p in sorted(paths) if word in p.name.lower())


FHIR_DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"


def _name(reader: Reader) -> str:
    return reader.__name__.rsplit(".", 1)[-1]


# reader module -> how to make (or find) one sample file, and the reader options it needs
SAMPLES: dict[str, tuple[Callable[[Path], Path], dict]] = {
    "apple_health": (lambda d: write_apple(_pop(), _pop().people[0], d), {}),
    "fitbit_json": (lambda d: _pick(write_fitbit(_pop(), _pop().people[0], d), "sleep"), {}),
    "fitbit_vitals": (
        lambda d: next(p for p in write_fitbit(_pop(), _pop().people[0], d) if p.suffix == ".csv"),
        {},
    ),
    "fhir": (lambda d: FHIR_DATA / "bundle-portal.json", {}),
    "lab_csv": (lambda d: write_lab_csv(d / "labs.csv", date(2026, 3, 2)), {}),
    "mmash_saliva": (
        lambda d: shared("mmash", "user_1", "saliva.csv"),
        {"start_date": date(2020, 1, 6)},
    ),
    "gadgetbridge": (lambda d: write_gadgetbridge(_pop(), "p001", d)[0], {}),
    "garmin_fit": (lambda d: _pick(write_garmin(_pop(), _pop().people[0], d), "sleep"), {}),
    "oura": (lambda d: _pick(write_oura(_pop(), "p001", d), "sleep"), {}),
    "whoop": (lambda d: _pick(write_whoop(_pop(), "p001", d), "sleep"), {}),
    "beat_csv": (lambda d: shared("mmash", "user_1", "RR.csv"), {"start_date": date(2020, 1, 6)}),
    "fitabase": (
        lambda d: shared("fitbit-fitabase", "Fitabase Data 4.12.16-5.12.16", "sleepDay_merged.csv"),
        {"fitabase_id": "6962181067"},
    ),
    "google_fit": (lambda d: shared("google-fit", "Daily activity metrics.csv"), {}),
    "pmdata": (lambda d: shared("pmdata", "p01", "pmsys", "wellness.csv"), {}),
}

_POP = []


def _pop():
    if not _POP:
        _POP.append(simulate(1, 7, seed=11))
    return _POP[0]


REAL_SAMPLES = {"beat_csv", "fitabase", "google_fit", "pmdata", "mmash_saliva"}
READERS = registry.readers()
IDS = [_name(r) for r in READERS]
PARAMS = [
    pytest.param(r, id=_name(r), marks=[pytest.mark.realdata] if _name(r) in REAL_SAMPLES else [])
    for r in READERS
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    """One sample per reader that has one here (real-data ones may be absent)."""
    out = {}
    for source, (make, _) in SAMPLES.items():
        try:
            out[source] = make(tmp_path_factory.mktemp(source))
        except pytest.skip.Exception:
            continue
    return out


def _sample(samples: dict[str, Path], reader: Reader) -> Path:
    name = _name(reader)
    assert name in SAMPLES, f"add a sample for the {name} reader to SAMPLES"
    if name not in samples:
        SAMPLES[name][0](Path())  # skips with the real-data reason
    return samples[name]


def _ctx(path: Path, reader: Reader) -> FileContext:
    return FileContext(path, str(path), "0" * 64, USER, dict(SAMPLES[_name(reader)][1]))


def _head(path: Path) -> bytes:
    return registry.read_head(path)


def _check_frames(reader: Reader, ctx: FileContext) -> int:
    rows = 0
    for table, df in reader.read(ctx):
        assert table in SILVER, f"{reader.SOURCE} yielded {table!r}, not a silver table"
        assert df.schema == pl.Schema(polars_schema(SILVER[table])), (reader.SOURCE, table)
        assert df.filter(pl.col("source") != reader.SOURCE).is_empty() or table == "vendor_score"
        rows += df.height
    return rows


def test_every_reader_has_a_sample():
    assert sorted(SAMPLES) == sorted(IDS)


@pytest.mark.parametrize("reader", PARAMS)
def test_source_is_known_and_has_a_priority(reader: Reader):
    assert isinstance(reader, Reader)
    assert reader.SOURCE in DEFAULT_PRIORITY
    assert isinstance(reader.PRIORITY, int)


@pytest.mark.parametrize("reader", PARAMS)
def test_sniffer_claims_its_own_sample_and_rejects_the_others(reader: Reader, samples, tmp_path):
    own = _sample(samples, reader)
    assert reader.sniff(own, _head(own)), f"{_name(reader)} does not claim its own sample"
    assert registry.detect(own) is reader, "a reader earlier in PRIORITY claims this sample"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(4096))
    others = [p for s, p in samples.items() if s != _name(reader)]
    for other in [*others, empty, noise]:
        assert not reader.sniff(other, _head(other)), f"{_name(reader)} claims {other.name}"


@pytest.mark.parametrize("reader", PARAMS)
def test_read_yields_contract_tables_only(reader: Reader, samples):
    own = _sample(samples, reader)
    assert _check_frames(reader, _ctx(own, reader)) > 0


@pytest.mark.parametrize("reader", PARAMS)
@pytest.mark.parametrize("cut", ["empty", "half"])
def test_read_survives_empty_and_truncated_files(reader: Reader, samples, tmp_path, cut):
    own = _sample(samples, reader)
    data = own.read_bytes()
    bad = tmp_path / own.name
    bad.write_bytes(b"" if cut == "empty" else data[: len(data) // 2])
    try:
        _check_frames(reader, _ctx(bad, reader))
    except Exception as exc:  # the runner quarantines the file with this message
        assert str(exc), f"{reader.SOURCE} raised {type(exc).__name__} without a message"


def test_a_sniffer_that_raises_is_reported(monkeypatch, tmp_path):
    def boom(path, head):
        raise ValueError("bad sniffer")

    first = READERS[0]
    monkeypatch.setattr(first, "sniff", boom)
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(registry.SnifferError, match=f"the {first.SOURCE} reader's sniffer"):
        registry.detect(f)
