"""Everything the lake holds about one person: inventory, export (one zip) and forget.

A person's data lives in seven places: silver and gold partitions (``user_id=<id>/``), manifest
entries (``<sha>.<id>.json``) and owed gold dates (``gold_pending/<id>.json``), quarantined files
with their reasons, quarantined rows (``quarantine/rows/*.parquet``, a ``user_id`` column),
staging left by a crashed run, and reports (weekly pages ``reports/weekly/<week>/<id>.*``; the
quality reports and rosters that list everyone). Export copies all of it; forget removes all of
it and proves it by taking the inventory again. Shared reports that mention the person are
removed whole rather than edited (they are run logs and rosters the next run writes afresh),
so no sentence about the person survives in them.

Both take the run lock: no run may be staging or committing that person's files meanwhile.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tunewell.lake import store
from tunewell.lake.schemas import TABLES


@dataclass
class Inventory:
    """Counts of what the lake holds about one person, by place."""

    rows: dict[str, int] = field(default_factory=dict)  # "silver.heart_rate" -> rows
    manifest_entries: int = 0
    gold_pending: int = 0
    quarantined_files: int = 0
    quarantined_rows: int = 0
    staging_files: int = 0
    report_files: int = 0  # own pages and shared reports that mention the person

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + sum(
            (
                self.manifest_entries,
                self.gold_pending,
                self.quarantined_files,
                self.quarantined_rows,
                self.staging_files,
                self.report_files,
            )
        )

    def as_dict(self) -> dict[str, int]:
        return {
            **{k: v for k, v in sorted(self.rows.items()) if v},
            "manifest entries": self.manifest_entries,
            "gold dates owed": self.gold_pending,
            "quarantined files": self.quarantined_files,
            "quarantined rows": self.quarantined_rows,
            "staging files": self.staging_files,
            "report files": self.report_files,
        }


def _partitions(lake: Path, name: str, user: str) -> list[Path]:
    base = store.table_dir(lake, name) / f"user_id={user}"
    return sorted(base.glob(f"year=*/{store.PART_FILE}")) if base.exists() else []


def _manifest_files(lake: Path, user: str) -> list[Path]:
    return sorted((Path(lake) / "manifest").glob(f"*/*.{user}.json"))


def _pending_file(lake: Path, user: str) -> Path:
    return Path(lake) / "manifest" / "gold_pending" / f"{user}.json"


def _quarantine_docs(lake: Path, user: str) -> list[tuple[Path, dict]]:
    out = []
    for p in sorted((Path(lake) / "quarantine").glob("*.json")):
        with contextlib.suppress(ValueError, RecursionError, OSError):
            doc = json.loads(p.read_bytes())
            if isinstance(doc, dict) and doc.get("user_id") == user and "sha256" in doc:
                out.append((p, doc))
    return out


def _row_files(lake: Path) -> list[Path]:
    return sorted((Path(lake) / "quarantine" / "rows").glob("*.parquet"))


def _mentions(path: Path, user: str) -> bool:
    try:
        return user.encode() in path.read_bytes()
    except OSError:
        return False


def _report_files(lake: Path, user: str) -> list[Path]:
    base = Path(lake) / "reports"
    if not base.exists():
        return []
    return sorted(
        p for p in base.rglob("*") if p.is_file() and (p.stem == user or _mentions(p, user))
    )


def inventory(lake: Path, user: str) -> Inventory:
    store.check_user_id(user)
    lake = Path(lake)
    inv = Inventory()
    for name, t in TABLES.items():
        n = sum(store.pq.read_metadata(p).num_rows for p in _partitions(lake, name, user))
        if n:
            inv.rows[f"{t.layer}.{name}"] = n
    inv.manifest_entries = len(_manifest_files(lake, user))
    pend = _pending_file(lake, user)
    inv.gold_pending = len(json.loads(pend.read_text())) if pend.exists() else 0
    inv.quarantined_files = len(_quarantine_docs(lake, user))
    for p in _row_files(lake):
        df = pl.read_parquet(p, columns=["user_id"])
        inv.quarantined_rows += df.filter(pl.col("user_id") == user).height
    staging = lake / "staging"
    inv.staging_files = sum(1 for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0
    inv.report_files = len(_report_files(lake, user))
    return inv


def _copy_of(reason: Path) -> Path:
    return reason.with_name(reason.name.removesuffix(".json"))


def export_user(lake: Path, user: str, out: Path) -> Inventory:
    """Write one zip with everything held about ``user``: each table's rows as Parquet, own
    pages and reports that mention them, manifest entries, quarantined files with their reasons
    and quarantined rows as Parquet, and a README saying what is where."""
    lake = Path(lake)
    with store.run_lock(lake):
        inv = inventory(lake, user)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, t in TABLES.items():
                if f"{t.layer}.{name}" not in inv.rows:
                    continue
                df = store.read(lake, name, [user])
                pq = io.BytesIO()
                df.write_parquet(pq)
                zf.writestr(f"{t.layer}/{name}.parquet", pq.getvalue())
            for p in _report_files(lake, user):
                zf.write(p, f"reports/{p.relative_to(lake / 'reports').as_posix()}")
            entries = [json.loads(p.read_text()) for p in _manifest_files(lake, user)]
            zf.writestr("manifest.json", json.dumps(entries, indent=1))
            for reason, _ in _quarantine_docs(lake, user):
                zf.write(reason, f"quarantine/{reason.name}")
                if _copy_of(reason).exists():
                    zf.write(_copy_of(reason), f"quarantine/files/{_copy_of(reason).name}")
            rows = [
                pl.read_parquet(p)
                .filter(pl.col("user_id") == user)
                .with_columns(pl.lit(p.name.split("-")[0]).alias("table"))
                for p in _row_files(lake)
            ]
            rows = [r for r in rows if r.height]
            for i, r in enumerate(rows):
                pq = io.BytesIO()
                r.write_parquet(pq)
                zf.writestr(f"quarantine/rows/{i:03d}.parquet", pq.getvalue())
            zf.writestr("README.md", _readme(user, inv))
        store.atomic_write_bytes(Path(out), buf.getvalue())  # 0600, never half a zip
    return inv


def _readme(user: str, inv: Inventory) -> str:
    lines = [
        f"# Everything tunewell holds about `{user}`",
        "",
        f"Exported {datetime.now(UTC).isoformat(timespec='seconds')}.",
        "",
        "- `silver/<table>.parquet`: measurements as read from your exports, one file per table.",
        "- `gold/<table>.parquet`: nightly features, daily load and scores computed from them.",
        "- `reports/`: your weekly pages, and run reports or rosters that mention you.",
        "- `manifest.json`: every file of yours that was read, when, and with how many rows.",
        "- `quarantine/`: files that could not be read (`files/`), why (`*.json`), and rows that",
        "  failed a check (`rows/*.parquet`, with the check that failed).",
        "",
        "Column meanings: the lake's DICTIONARY.md. Counts in this export:",
        "",
        "| what | count |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in inv.as_dict().items()),
        "",
    ]
    return "\n".join(lines)


@dataclass
class ForgetReport:
    user: str
    before: Inventory
    after: Inventory
    removed_files: int = 0


def forget_user(lake: Path, user: str) -> ForgetReport:
    """Remove every row and file of ``user``; the inventory after is all zeros (checked)."""
    lake = Path(lake)
    with store.run_lock(lake), store.lake_lock(lake):
        before = inventory(lake, user)
        gone = 0
        for name in TABLES:
            base = store.table_dir(lake, name) / f"user_id={user}"
            if base.exists():
                gone += sum(1 for p in base.rglob("*") if p.is_file())
                shutil.rmtree(base)
        for p in [*_manifest_files(lake, user), _pending_file(lake, user)]:
            if p.exists():
                p.unlink()
                gone += 1
        for reason, _ in _quarantine_docs(lake, user):  # copies are per person: both go
            reason.unlink()
            gone += 1
            copy = _copy_of(reason)
            if copy.exists():
                copy.unlink()
                gone += 1
        for p in _row_files(lake):
            df = pl.read_parquet(p)
            keep = df.filter(pl.col("user_id") != user)
            if keep.height == df.height:
                continue
            if keep.is_empty():
                p.unlink()
            else:
                pq = io.BytesIO()
                keep.write_parquet(pq)
                store.atomic_write_bytes(p, pq.getvalue())
            gone += 1
        staging = lake / "staging"
        if staging.exists():  # only a crashed run's leftovers (runs are locked out): unnamed
            gone += sum(1 for p in staging.rglob("*") if p.is_file())
            shutil.rmtree(staging)
        for p in _report_files(lake, user):
            p.unlink()
            gone += 1
        for d in sorted((lake / "reports").rglob("*"), reverse=True):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        after = inventory(lake, user)
    return ForgetReport(user, before, after, gone)
