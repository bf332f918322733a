"""The nightly flow's task functions in order, without Prefect (a subprocess for the harness)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tunewell.ingest import runner
from tunewell.lake.store import LakeLockedError, init_lake, run_lock
from tunewell.models.score import refresh as refresh_features_and_scores
from tunewell.pipelines import quality
from tunewell.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--lake", required=True)
    args = ap.parse_args()
    settings = load_settings(args.config, args.lake)
    settings = replace(settings, lake=Path(args.lake))
    init_lake(settings.lake)
    try:
        with run_lock(settings.lake):  # as the flow does
            files = list(runner.discover_inbox(settings.inbox))
            staged = []
            for cand in files:  # nightly.stage
                staged += runner.stage_file(
                    cand.path,
                    settings.user(cand.user_id),
                    settings,
                    display=runner.private_display(cand, settings),
                )
            report = runner.commit(staged, settings)  # nightly.write_silver
            refresh_features_and_scores(settings, None)  # nightly.update_gold
            quality.write_report(quality.build_report(report, settings), settings.lake)
    except LakeLockedError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
