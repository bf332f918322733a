"""The run report a person reads in the Prefect UI after a scheduled run: did it work, what came
in, what was rejected, whose gold changed, how long it took, and where the full quality report is.

A plain function of the run's results (tested without Prefect); the flow publishes its output as
a Markdown artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunewell.features.refresh import RefreshStats
from tunewell.lake.manifest import FileStatus
from tunewell.pipelines.quality import QualityReport

RUN_ARTIFACT_KEY = "tunewell-nightly-run"
QUALITY_ARTIFACT_KEY = "tunewell-quality-report"


@dataclass
class RunSummary:
    files_seen: int
    ingested: int
    already_seen: int
    quarantined: int
    skipped: int
    rows_new: dict[str, int]
    rows_updated: dict[str, int]
    quarantine_reasons: list[str]
    users_updated: list[str]
    gold_rows: dict[str, int]
    gold_ranges: dict[str, tuple[str, str]]
    seconds: float
    quality_report: str
    runner: str = "default"
    backfill: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_report(
        cls,
        rep: QualityReport,
        seconds: float,
        *,
        runner: str = "default",
        backfill: tuple[str, str] | None = None,
    ) -> RunSummary:
        run, gold = rep.run, rep.gold_refresh or RefreshStats()
        return cls(
            files_seen=len(run.files),
            ingested=run.count(FileStatus.INGESTED),
            already_seen=run.count(FileStatus.ALREADY_SEEN),
            quarantined=run.count(FileStatus.QUARANTINED),
            skipped=run.count(FileStatus.SKIPPED),
            rows_new={t: s.inserted for t, s in sorted(run.tables.items()) if s.inserted},
            rows_updated={t: s.updated for t, s in sorted(run.tables.items()) if s.updated},
            quarantine_reasons=[q.error for q in rep.quarantine_reasons],
            users_updated=list(gold.users),
            gold_rows=dict(gold.rows),
            gold_ranges=dict(gold.ranges),
            seconds=seconds,
            quality_report=str(rep.report_path or ""),
            runner=runner,
            backfill=backfill,
        )


def _link(path: str) -> str:
    if "://" in path:
        return path
    return Path(path).resolve().as_uri()


def run_markdown(s: RunSummary) -> str:
    """The artifact's text: counts first (what a person scans for), details after."""
    status = "with quarantined files" if s.quarantined else "ok"
    lines = [
        f"# tunewell nightly: {status}",
        "",
        "| files seen | ingested | already seen | quarantined | skipped | users updated "
        "| duration |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s.files_seen} | {s.ingested} | {s.already_seen} | {s.quarantined} | {s.skipped} "
        f"| {len(s.users_updated)} | {s.seconds:.1f} s |",
        "",
        f"Runner: {s.runner}."
        + (f" Backfill {s.backfill[0]} .. {s.backfill[1]}." if s.backfill else ""),
        "",
        "## Rows",
        "",
        "| table | new | updated |",
        "|---|---:|---:|",
    ]
    for t in sorted(set(s.rows_new) | set(s.rows_updated)):
        lines.append(f"| {t} | {s.rows_new.get(t, 0)} | {s.rows_updated.get(t, 0)} |")
    if not (s.rows_new or s.rows_updated):
        lines.append("| (no silver rows changed) | 0 | 0 |")
    lines += ["", "## Gold refresh", "", "| user | from | to |", "|---|---|---|"]
    for user in s.users_updated:
        lo, hi = s.gold_ranges.get(user, ("", ""))
        lines.append(f"| {user} | {lo} | {hi} |")
    if not s.users_updated:
        lines.append("| (nothing owed) | | |")
    if s.gold_rows:
        lines += ["", ", ".join(f"{t}: {n} rows written" for t, n in sorted(s.gold_rows.items()))]
    if s.quarantine_reasons:
        lines += ["", "## Quarantined", ""] + [f"- {r}" for r in s.quarantine_reasons]
    lines += [
        "",
        "## Quality report",
        "",
        f"[{s.quality_report}]({_link(s.quality_report)}) (also the artifact "
        f"`{QUALITY_ARTIFACT_KEY}`)",
    ]
    return "\n".join(lines) + "\n"
