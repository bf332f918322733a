"""The data-quality report of a run: what came in, what was kept, what was dropped and why.

Every number a coach or analyst might doubt later is here: files seen / ingested / skipped as
already seen / quarantined (with reasons), rows per table in / new / dropped as duplicate /
dropped as invalid / dropped by the multi-device merge, the days each user has per source, and
what gold holds per user. It reads silver and gold, so it lives in the orchestration layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from tunewell.features.refresh import RefreshStats
from tunewell.ingest.runner import RunReport
from tunewell.lake import store
from tunewell.lake.manifest import FileStatus
from tunewell.lake.merge import merge_counts as count_merged
from tunewell.lake.paths import lake_path
from tunewell.lake.store import atomic_write_bytes
from tunewell.lake.timezones import local_date
from tunewell.settings import Settings


def coverage(lake: Path, users: list[str] | None = None) -> pl.DataFrame:
    """Days with data per user, source and table (local dates)."""
    frames = []
    for name in store.table_names("silver"):
        lf = store.scan(lake, name, users)
        frames.append(
            lf.select("user_id", "source", local_date().alias("day"))
            .group_by("user_id", "source")
            .agg(
                pl.col("day").n_unique().alias("days"),
                pl.col("day").min().alias("first_day"),
                pl.col("day").max().alias("last_day"),
                pl.len().alias("rows"),
            )
            .with_columns(pl.lit(name).alias("table"))
            .collect()
        )
    return pl.concat(frames).sort("user_id", "table", "source") if frames else pl.DataFrame()


@dataclass(frozen=True)
class QuarantineLine:
    file: str
    format: str
    error: str


@dataclass(frozen=True)
class ReaderNote:
    file: str
    note: str


@dataclass(frozen=True)
class MergeLine:
    table: str
    rows: int
    resolved: int
    dropped_by_merge: int


@dataclass(frozen=True)
class GoldLine:
    """Per user: nights in gold and how many had each feature family, so a reader sees at once
    whether the numbers behind a score exist (a calibrating baseline is not a bad night)."""

    user_id: str
    nights: int
    with_sleep: int
    with_rmssd: int
    with_sdnn_only: int
    with_resting_hr: int
    with_sri: int
    hrv_baseline_ready: int
    first: str | None
    last: str | None


@dataclass(frozen=True)
class CoverageLine:
    user_id: str
    table: str
    source: str
    days: int
    first_day: str | None
    last_day: str | None
    rows: int


@dataclass
class QualityReport:
    """One run's data-quality report; ``to_dict`` is the JSON written beside the Markdown."""

    run: RunReport
    generated_at: str
    lake: str
    quarantine_reasons: list[QuarantineLine] = field(default_factory=list)
    notes: list[ReaderNote] = field(default_factory=list)
    merge: list[MergeLine] = field(default_factory=list)
    gold: list[GoldLine] = field(default_factory=list)
    coverage: list[CoverageLine] = field(default_factory=list)
    # Filled by the nightly flow after the gold refresh and the write.
    gold_refresh: RefreshStats | None = None
    report_path: Path | None = None
    # The run report published as a Prefect artifact (pipelines/run_report.py).
    run_markdown: str | None = None

    def count(self, status: FileStatus) -> int:
        return self.run.count(status)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.run.to_dict()
        out |= {
            "generated_at": self.generated_at,
            "lake": self.lake,
            "quarantine_reasons": [asdict(q) for q in self.quarantine_reasons],
            "notes": [asdict(n) for n in self.notes],
            "merge": [asdict(m) for m in self.merge],
            "gold": [asdict(g) for g in self.gold],
            "coverage": [asdict(c) for c in self.coverage],
        }
        if self.gold_refresh is not None:
            g = self.gold_refresh
            out["gold_refresh"] = {"users": g.users, "rows": g.rows, "ranges": g.ranges}
        if self.report_path is not None:
            out["report_path"] = str(self.report_path)
        if self.run_markdown is not None:
            out["run_markdown"] = self.run_markdown
        return out


def merge_counts(lake: Path, settings: Settings, users: list[str]) -> list[MergeLine]:
    silver = {n: store.scan(lake, n, users) for n in store.table_names("silver")}
    counts = count_merged(silver, settings.source_priority)
    return [MergeLine(c.table, c.rows_in, c.rows_out, c.dropped) for c in counts if c.rows_in]


def gold_coverage(lake: Path, users: list[str]) -> list[GoldLine]:
    """``GoldLine`` per user, from gold ``nightly_features``."""
    nf = store.scan(lake, "nightly_features", users)
    rows = (
        nf.group_by("user_id")
        .agg(
            pl.len().alias("nights"),
            pl.col("sleep_ok").sum().alias("with_sleep"),
            pl.col("rmssd_ms").is_not_null().sum().alias("with_rmssd"),
            (pl.col("sdnn_ms").is_not_null() & pl.col("rmssd_ms").is_null())
            .sum()
            .alias("with_sdnn_only"),
            pl.col("resting_hr").is_not_null().sum().alias("with_resting_hr"),
            pl.col("sri_ok").sum().alias("with_sri"),
            (~pl.col("ln_rmssd_calibrating")).sum().alias("hrv_baseline_ready"),
            pl.col("sleep_date").min().cast(pl.String).alias("first"),
            pl.col("sleep_date").max().cast(pl.String).alias("last"),
        )
        .sort("user_id")
        .collect()
        .to_dicts()
    )
    return [GoldLine(**r) for r in rows]


def build_report(run: RunReport, settings: Settings) -> QualityReport:
    lake = lake_path(settings.lake)
    users = sorted({f.user_id for f in run.files}) or store.users_in(lake)
    cov = coverage(lake, users) if users else pl.DataFrame()
    return QualityReport(
        run=run,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        lake=str(lake),
        quarantine_reasons=[
            QuarantineLine(f.file, f.format, f.error)
            for f in run.files
            if f.status == FileStatus.QUARANTINED
        ],
        notes=[ReaderNote(f.file, n) for f in run.files for n in f.notes],
        merge=merge_counts(lake, settings, users) if users else [],
        gold=gold_coverage(lake, users) if users else [],
        coverage=[
            CoverageLine(**c)
            for c in cov.with_columns(pl.col("first_day", "last_day").cast(pl.String)).to_dicts()
        ]
        if cov.height
        else [],
    )


def to_markdown(rep: QualityReport) -> str:
    run = rep.run
    lines = [
        f"# tunewell data-quality report ({rep.generated_at})",
        "",
        f"Lake: `{rep.lake}`",
        "",
        "| files seen | ingested | already seen | quarantined | skipped (unknown format) |",
        "|---|---|---|---|---|",
        f"| {len(run.files)} | {run.count(FileStatus.INGESTED)} | "
        f"{run.count(FileStatus.ALREADY_SEEN)} | {run.count(FileStatus.QUARANTINED)} | "
        f"{run.count(FileStatus.SKIPPED)} |",
        "",
        "## Rows per table",
        "",
        "| table | rows in | new | updated | unchanged | duplicates in batch | invalid |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in sorted(run.tables.items()):
        invalid = sum(run.invalid_rows.get(name, {}).values())
        lines.append(
            f"| {name} | {t.rows_in + invalid} | {t.inserted} | {t.updated} | "
            f"{t.unchanged} | {t.duplicates_in_batch} | {invalid} |"
        )
    if run.validated:
        lines += [
            "",
            "## Validation (Great Expectations suite per table)",
            "",
            "| table | rows checked | expectation | failing rows |",
            "|---|---|---|---|",
        ]
        for tbl, v in run.validated.items():
            fails = run.invalid_rows.get(tbl, {})
            lines += [
                f"| {tbl} | {v['rows']} | {name} | {fails.get(name, 0)} |"
                for name in v["expectations"]
            ]
    if rep.quarantine_reasons:
        lines += ["", "## Quarantined files", "", "| file | format | reason |", "|---|---|---|"]
        lines += [
            f"| `{q.file}` | {q.format} | {q.error.replace('|', '/')} |"
            for q in rep.quarantine_reasons
        ]
    if rep.notes:
        lines += ["", "## Notes from readers", "", "| file | note |", "|---|---|"]
        lines += [f"| `{n.file}` | {n.note.replace('|', '/')} |" for n in rep.notes]
    if rep.merge:
        lines += [
            "",
            "## Several devices: merge",
            "",
            "| table | rows | after merge | dropped by merge |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {m.table} | {m.rows} | {m.resolved} | {m.dropped_by_merge} |" for m in rep.merge
        ]
    if rep.coverage:
        lines += [
            "",
            "## Days covered per user and source",
            "",
            "| user | table | source | days | first | last | rows |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.user_id} | {c.table} | {c.source} | {c.days} | "
            f"{c.first_day} | {c.last_day} | {c.rows} |"
            for c in rep.coverage
        ]
    if rep.gold:
        lines += [
            "",
            "## Gold: nights and what each had",
            "",
            "| user | nights | sleep | RMSSD | SDNN only | resting HR | SRI | "
            "HRV baseline ready | first | last |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {g.user_id} | {g.nights} | {g.with_sleep} | {g.with_rmssd} | "
            f"{g.with_sdnn_only} | {g.with_resting_hr} | {g.with_sri} | "
            f"{g.hrv_baseline_ready} | {g.first} | {g.last} |"
            for g in rep.gold
        ]
    return "\n".join(lines) + "\n"


def write_report(rep: QualityReport, lake: Path) -> Path:
    """Write ``reports/quality-<time>.{json,md}`` and ``reports/quality-latest.md``."""
    stamp = rep.generated_at.replace(":", "").replace("+0000", "Z")
    base = lake_path(lake) / "reports"
    md = to_markdown(rep)
    atomic_write_bytes(
        base / f"quality-{stamp}.json", json.dumps(rep.to_dict(), indent=1, default=str).encode()
    )
    atomic_write_bytes(base / f"quality-{stamp}.md", md.encode())
    atomic_write_bytes(base / "quality-latest.md", md.encode())
    return base / "quality-latest.md"
