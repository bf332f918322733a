"""Property-based: mutated bytes of a real-format sample never crash the run, never hang, never
write outside the lake and never stage rows that break the schema, for every reader."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.samples import check_one, mutate, samples
from tunewell.ingest.registry import detect, read_head

OPS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 1 << 30), st.integers(0, 1 << 16)),
    min_size=1,
    max_size=6,
)
OPTIONS = {"start_date": "2020-01-01"}  # beat_csv needs its day 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return samples(tmp_path_factory.mktemp("samples"))


def test_every_reader_has_a_sample_it_claims(corpus):
    from tunewell.ingest.registry import readers

    def module(m) -> str:
        return m.__name__.rsplit(".", 1)[1]

    assert {module(m) for m in readers()} == set(corpus)
    for name, path in corpus.items():
        mod = detect(path, read_head(path))
        assert mod is not None, (name, path)
        assert (module(mod), path) == (name, path)


@pytest.mark.parametrize(
    "reader",
    [
        "apple_health",
        "garmin_fit",
        "fitbit_json",
        "fitbit_vitals",
        "gadgetbridge",
        "oura",
        "whoop",
        "beat_csv",
        "fitabase",
        "google_fit",
        "pmdata",
        "lab_csv",
        "fhir",
        "mmash_saliva",
    ],
)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_mutated_sample_is_handled(corpus, tmp_path, reader, ops):
    src = corpus[reader]
    work = tmp_path / "w"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    bad = work / f"mutated{src.suffix}"
    bad.write_bytes(mutate(src.read_bytes(), ops))
    assert check_one(bad, work, OPTIONS) == []


@settings(max_examples=10, deadline=None)
@given(
    data=st.binary(max_size=4096),
    suffix=st.sampled_from([".fit", ".xml", ".json", ".csv", ".zip", ""]),
)
def test_arbitrary_bytes_are_handled(tmp_path_factory, data, suffix):
    work = tmp_path_factory.mktemp("arb")
    f = work / f"file{suffix}"
    f.write_bytes(data)
    assert check_one(f, work) == []
