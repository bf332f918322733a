"""Named crash points: where the reliability harness may SIGKILL a run to prove it survives.

``TUNEWELL_CRASH_AT=<point>[:<n>]`` kills the process the n-th time it reaches ``<point>``
(``any:<n>`` at the n-th point of any name); ``TUNEWELL_CRASH_LOG=<file>`` appends every point
reached, so a clean run tells the harness how many points there are to choose from. Without
either variable a crash point is one dictionary lookup: the hooks stay in production code, at the
places a crash would hurt (between a temporary file and its rename, between silver and manifest,
between silver and gold, during gold writes), so what is tested is what runs.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

_hits: Counter[str] = Counter()


def crashpoint(name: str) -> None:
    spec = os.environ.get("TUNEWELL_CRASH_AT")
    log = os.environ.get("TUNEWELL_CRASH_LOG")
    if not spec and not log:
        return
    _hits[name] += 1
    _hits["any"] += 1
    if log:
        with Path(log).open("a") as fh:
            fh.write(f"{name}\n")
    if spec:
        target, _, n = spec.partition(":")
        if _hits[target] == int(n or 1) and target in (name, "any"):
            os.kill(os.getpid(), signal.SIGKILL)
