"""Compare two lakes by content (every table's rows, hashed in a fixed order), and a real S3
API server on loopback to put a lake in."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Iterator

import polars.selectors as cs

from tunewell.lake import store

# The feature build is not bit-for-bit deterministic between two runs of the same code (rolling
# CVs and some circadian values differ around the 15th digit, summation order), so floats are
# compared at 10 significant digits.
SIG_FIGS = 10


def lake_content(lake) -> dict[str, tuple[int, str]]:
    """Per table: row count and a hash of every row's values (sorted by record_id), so two lakes
    are equal only when they hold the same rows with the same values."""
    out = {}
    for name in store.table_names():
        df = (
            store.read(lake, name)
            .sort("record_id")
            .with_columns(cs.float().round_sig_figs(SIG_FIGS))
            .with_columns(cs.float().fill_nan(None))
        )
        out[name] = (df.height, hashlib.sha256(df.write_csv().encode()).hexdigest())
    return out


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with ``bucket`` created; the AWS environment points at it
    while the context is open (fsspec's cached file systems are dropped on the way in and out)."""
    import pytest
    import s3fs
    from moto.server import ThreadedMotoServer

    from tunewell.lake import paths

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    mp = pytest.MonkeyPatch()
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }.items():
        mp.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    paths._fs.cache_clear()
    try:
        paths._fs("s3").mkdir(bucket)
        yield f"http://127.0.0.1:{port}"
    finally:
        paths._fs.cache_clear()
        s3fs.S3FileSystem.clear_instance_cache()
        mp.undo()
        server.stop()
