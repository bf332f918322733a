"""SQL over the lake with DuckDB: one view per table, typed partitions, empty tables queryable.

Analysts should not need to know the folder layout: ``select * from sleep_episode`` works, and a
table with no rows yet is an empty view with the right columns rather than an error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import polars as pl

from tunewell.lake import store
from tunewell.lake.paths import RemotePath, lake_path
from tunewell.lake.schemas import TABLES


def connect(lake: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if isinstance(lake_path(lake), RemotePath):
        # DuckDB's own S3 reader (httpfs) is an extension it downloads; read the objects over
        # fsspec instead and hand DuckDB the Arrow tables.
        for name in TABLES:
            con.register(f"__arrow_{name}", store.read(lake, name).to_arrow())
            con.execute(f"create view {name} as select * from __arrow_{name}")
        return con
    # Spilled query state is health data too: owner-only, never ./.tmp in whatever folder
    # the analyst happens to be in.
    try:
        tmp = store.secure_mkdir(Path(lake) / ".duckdb_tmp")
    except OSError:  # a read-only lake: a private folder elsewhere
        tmp = Path(tempfile.mkdtemp(prefix="tunewell-duckdb-"))
    con.execute(f"set temp_directory = '{tmp.as_posix().replace(chr(39), chr(39) * 2)}'")
    for name in TABLES:
        base = store.table_dir(lake, name)
        files = sorted(base.glob(f"user_id=*/year=*/{store.PART_FILE}")) if base.exists() else []
        if files:
            glob = (base / "user_id=*" / "year=*" / store.PART_FILE).as_posix().replace("'", "''")
            con.execute(
                f"create view {name} as select * exclude (year) from read_parquet('{glob}', "
                "hive_partitioning = true, hive_types = {'user_id': VARCHAR, 'year': INTEGER})"
            )
        else:
            con.register(f"__empty_{name}", store.empty(name).to_arrow())
            con.execute(f"create view {name} as select * from __empty_{name}")
    return con


def run_query(lake: Path, sql: str) -> pl.DataFrame:
    con = connect(lake_path(lake))
    try:
        return con.sql(sql).pl()
    finally:
        con.close()
