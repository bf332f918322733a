"""The nightly path without Prefect (``steps.run_nightly``, the function the flow runs with
Prefect tasks): a subprocess for the crash harness and the S3 crash test."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from tunewell.ingest import runner
from tunewell.lake.paths import lake_path
from tunewell.lake.store import LakeLockedError
from tunewell.pipelines import steps
from tunewell.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--lake", required=True)
    args = ap.parse_args()
    settings = load_settings(args.config, args.lake)
    settings = replace(settings, lake=lake_path(args.lake))
    try:
        steps.run_nightly(settings, runner.discover_inbox(settings.inbox))
    except LakeLockedError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
