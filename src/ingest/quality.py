"""The data-quality report of a run: what came in, what was kept, what was dropped and why.

Every number a coach or analyst might doubt later is here: files seen / ingested / skipped as
already seen / quarantined (with reasons), rows per table in / new / dropped as duplicate /
dropped as invalid / dropped by the multi-device merge, and the days each user has per source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tunewell.ingest.runner import RunReport
from tunewell.lake import store
from tunewell.lake.merge import resolve_silver
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


def merge_counts(lake: Path, settings: Settings, users: list[str]) -> list[dict]:
    silver = {n: store.scan(lake, n, users) for n in store.table_names("silver")}
    _, counts = resolve_silver(silver, settings.source_priority)
    return [
        {"table": c.table, "rows": c.rows_in, "resolved": c.rows_out, "dropped_by_merge": c.dropped}
        for c in counts
        if c.rows_in
    ]


def gold_coverage(lake: Path, users: list[str]) -> list[dict]:
    """Per user: nights in gold and how many had each feature family, so a reader sees at once
    whether the numbers behind a score exist (a calibrating baseline is not a bad night)."""
    nf = store.scan(lake, "nightly_features", users)
    return (
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


def build_report(run: RunReport, settings: Settings) -> dict:
    lake = Path(settings.lake)
    users = sorted({f.user_id for f in run.files}) or store.users_in(lake)
    rep = run.to_dict()
    rep["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    rep["lake"] = str(lake)
    rep["quarantine_reasons"] = [
        {"file": f.file, "format": f.format, "error": f.error}
        for f in run.files
        if f.status == "quarantined"
    ]
    rep["notes"] = [{"file": f.file, "note": n} for f in run.files for n in f.notes]
    rep["merge"] = merge_counts(lake, settings, users) if users else []
    rep["gold"] = gold_coverage(lake, users) if users else []
    cov = coverage(lake, users) if users else pl.DataFrame()
    rep["coverage"] = (
        cov.with_columns(pl.col("first_day", "last_day").cast(pl.String)).to_dicts()
        if cov.height
        else []
    )
    return rep


def to_markdown(rep: dict) -> str:
    lines = [
        f"# tunewell data-quality report ({rep['generated_at']})",
        "",
        f"Lake: `{rep['lake']}`",
        "",
        "| files seen | ingested | already seen | quarantined | skipped (unknown format) |",
        "|---|---|---|---|---|",
        f"| {rep['files_seen']} | {rep['ingested']} | {rep['already_seen']} | "
        f"{rep['quarantined']} | {rep['skipped']} |",
        "",
        "## Rows per table",
        "",
        "| table | rows in | new | updated | unchanged | duplicates in batch | invalid |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in rep["tables"].items():
        invalid = sum(rep["invalid_rows"].get(name, {}).values())
        lines.append(
            f"| {name} | {t['rows_in'] + invalid} | {t['inserted']} | {t['updated']} | "
            f"{t['unchanged']} | {t['duplicates_in_batch']} | {invalid} |"
        )
    if rep.get("validated"):
        lines += [
            "",
            "## Validation (Great Expectations suite per table)",
            "",
            "| table | rows checked | expectation | failing rows |",
            "|---|---|---|---|",
        ]
        for tbl, v in rep["validated"].items():
            fails = rep["invalid_rows"].get(tbl, {})
            lines += [
                f"| {tbl} | {v['rows']} | {name} | {fails.get(name, 0)} |"
                for name in v["expectations"]
            ]
    if rep["quarantine_reasons"]:
        lines += ["", "## Quarantined files", "", "| file | format | reason |", "|---|---|---|"]
        lines += [
            f"| `{q['file']}` | {q['format']} | {q['error'].replace('|', '/')} |"
            for q in rep["quarantine_reasons"]
        ]
    if rep.get("notes"):
        lines += ["", "## Notes from readers", "", "| file | note |", "|---|---|"]
        lines += [f"| `{n['file']}` | {n['note'].replace('|', '/')} |" for n in rep["notes"]]
    if rep["merge"]:
        lines += [
            "",
            "## Several devices: merge",
            "",
            "| table | rows | after merge | dropped by merge |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {m['table']} | {m['rows']} | {m['resolved']} | {m['dropped_by_merge']} |"
            for m in rep["merge"]
        ]
    if rep["coverage"]:
        lines += [
            "",
            "## Days covered per user and source",
            "",
            "| user | table | source | days | first | last | rows |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['user_id']} | {c['table']} | {c['source']} | {c['days']} | "
            f"{c['first_day']} | {c['last_day']} | {c['rows']} |"
            for c in rep["coverage"]
        ]
    if rep.get("gold"):
        lines += [
            "",
            "## Gold: nights and what each had",
            "",
            "| user | nights | sleep | RMSSD | SDNN only | resting HR | SRI | "
            "HRV baseline ready | first | last |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {g['user_id']} | {g['nights']} | {g['with_sleep']} | {g['with_rmssd']} | "
            f"{g['with_sdnn_only']} | {g['with_resting_hr']} | {g['with_sri']} | "
            f"{g['hrv_baseline_ready']} | {g['first']} | {g['last']} |"
            for g in rep["gold"]
        ]
    return "\n".join(lines) + "\n"


def write_report(rep: dict, lake: Path) -> Path:
    """Write ``reports/quality-<time>.{json,md}`` and ``reports/quality-latest.md``."""
    stamp = rep["generated_at"].replace(":", "").replace("+0000", "Z")
    base = Path(lake) / "reports"
    md = to_markdown(rep)
    atomic_write_bytes(
        base / f"quality-{stamp}.json", json.dumps(rep, indent=1, default=str).encode()
    )
    atomic_write_bytes(base / f"quality-{stamp}.md", md.encode())
    atomic_write_bytes(base / "quality-latest.md", md.encode())
    return base / "quality-latest.md"
