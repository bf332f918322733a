"""SIGKILL the nightly path at the dangerous points, re-run, and find the lake identical to a
clean run's (the long version with >= 20 points: ``make soak``)."""

from __future__ import annotations

import pytest

from tests.reliability import harness

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]

# Between a temporary file and its rename (the 5th: a silver partition), after silver before the
# manifest marks files ingested, during the gold writes. Decode, manifest update, before gold and
# random points are in the soak (tests/soak/crash_soak.py, >= 20 points).
POINTS = ["before_rename:5", "silver_written", "feature_write:2"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    cfg = harness.make_demo(root, users=1, days=7)
    points = harness.count_points(cfg, root / "clean", root / "points.log")
    return root, cfg, harness.lake_digest(root / "clean"), points


def test_clean_run_reaches_every_dangerous_point_and_leaves_no_strays(demo):
    root, _, reference, points = demo
    for p in POINTS:
        name, _, n = p.partition(":")
        assert points.count(name) >= int(n or 1), f"{p} is never reached"
    assert any(k.startswith("silver/") for k in reference)
    assert any(k.startswith("gold/") for k in reference)
    assert any(k.startswith("manifest/") for k in reference)
    assert harness.strays(root / "clean") == []


@pytest.mark.parametrize("point", POINTS)
def test_killed_run_then_rerun_equals_a_clean_run(demo, point):
    root, cfg, reference, _ = demo
    out = harness.kill_and_recover(cfg, root / "lake", point, reference)
    assert out.killed, f"the run was not killed at {point}"
    assert out.problems == []
