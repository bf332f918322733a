"""FHIR validation cost: tunewell's JSON-shape checks against ``fhir.resources`` (R4B models).

Run: ``.venv/bin/python bench/fhir_validation.py`` (``fhir.resources`` is not a dependency; the
``fhir.resources`` half runs only where it is installed, e.g. in a scratch venv:
``pip install fhir.resources==8.3.0``, then run with that venv's python and ``PYTHONPATH``
pointing at this project's install).

Measures, on the spec-modelled examples in ``tests/data/fhir`` repeated to N Observations:
import time of each validator (fresh subprocess) and time per Observation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "fhir"
N = 2000


def _import_time(stmt: str) -> float | None:
    code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(res.stdout) if res.returncode == 0 else None


def observations() -> list[dict]:
    glucose = json.loads((DATA / "observation-f001-glucose.json").read_text())
    bundle = json.loads((DATA / "bundle-portal.json").read_text())
    obs = [glucose] + [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    return [obs[i % len(obs)] for i in range(N)]


def bench_tunewell(items: list[dict]) -> float:
    from tunewell.ingest.base import FileContext
    from tunewell.ingest.formats.fhir import Extractor
    from tunewell.lake.settings import UserSettings

    ctx = FileContext(Path("b.json"), "b.json", "0" * 64, UserSettings("u", tz="UTC"))
    t = time.perf_counter()
    for o in items:
        Extractor(ctx, "b.json").document(o)
    return (time.perf_counter() - t) / len(items)


def bench_fhir_resources(items: list[dict]) -> float | None:
    try:
        from fhir.resources.R4B.observation import Observation
    except ImportError:
        return None
    t = time.perf_counter()
    for o in items:
        Observation.model_validate(o)
    return (time.perf_counter() - t) / len(items)


def main() -> None:
    items = observations()
    ours_import = _import_time("import tunewell.ingest.formats.fhir")
    theirs_import = _import_time("import fhir.resources.R4B.observation")
    ours = bench_tunewell(items)
    theirs = bench_fhir_resources(items)
    print(f"Observations validated: {len(items)}")
    print(f"tunewell shape checks: import {ours_import:.2f} s, {ours * 1e3:.3f} ms/Observation")
    if theirs is None or theirs_import is None:
        print("fhir.resources: not installed here")
    else:
        print(
            f"fhir.resources R4B:    import {theirs_import:.2f} s, "
            f"{theirs * 1e3:.3f} ms/Observation"
        )


if __name__ == "__main__":
    main()
