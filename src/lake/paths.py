"""Where the lake lives: a local folder (``pathlib.Path``) or an fsspec URL (``s3://bucket/lake``).

The store, manifest and reports only need a handful of path operations (join, name, exists,
glob, read, write one object, delete), so a remote lake is a small path-like class over fsspec
rather than a second code path through every module. Local lakes stay plain ``Path`` objects, so
the local behaviour (temp file + fsync + rename, flock) is untouched.

Object stores have no folders, no rename and no flock: ``store.atomic_write_bytes`` writes a
remote object with one PUT (which S3 applies atomically: readers see the old or the new object,
never part of one) and ``store.lake_lock`` uses a conditional PUT (DESIGN.md, "Lake on object
storage"). Credentials and endpoints come from the usual environment (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL``, ``~/.aws``...), never from tunewell's settings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Buffer

    # For the type checker a remote path is a Path: every lake function takes either, and
    # ``isinstance(p, RemotePath)`` marks the few places that differ. At run time it is not one
    # (a Path method it lacks fails loudly instead of touching the local disk).
    _PathBase = Path
else:
    _PathBase = object


def is_url(value: object) -> bool:
    return isinstance(value, RemotePath) or "://" in str(value)


def lake_path(value: str | Path) -> Path:
    """The lake (or a path inside it) as the right kind of path."""
    if isinstance(value, RemotePath | Path):
        return value
    return RemotePath(str(value)) if is_url(value) else Path(value)


@functools.cache
def _fs(protocol: str) -> Any:
    import fsspec

    kwargs: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        # Another process (a Dask worker, the next run) may have written since we last listed.
        kwargs["use_listings_cache"] = False
    return fsspec.filesystem(protocol, **kwargs)


class RemotePath(_PathBase):
    """The few ``pathlib`` operations the lake uses, on an fsspec URL."""

    __slots__ = ("key", "protocol")

    def __init__(self, url: str) -> None:
        protocol, _, key = url.partition("://")
        self.protocol = protocol
        self.key = key.strip("/")

    @property
    def fs(self) -> Any:
        return _fs(self.protocol)

    def _new(self, key: str) -> RemotePath:
        return RemotePath(f"{self.protocol}://{key}")

    def __truediv__(self, part: str | os.PathLike[str]) -> RemotePath:
        return self._new(f"{self.key}/{str(part).strip('/')}")

    def __str__(self) -> str:
        return f"{self.protocol}://{self.key}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: PurePath) -> bool:
        return str(self) < str(other)

    def as_posix(self) -> str:
        return str(self)

    def as_uri(self) -> str:
        return str(self)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        name = self.name
        return name.rsplit(".", 1)[0] if "." in name[1:] else name

    @property
    def parent(self) -> RemotePath:
        return self._new(self.key.rsplit("/", 1)[0])

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def exists(self) -> bool:
        return bool(self.fs.exists(self.key))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.key))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.key))

    def glob(self, pattern: str) -> Generator[RemotePath, None, None]:
        for key in self.fs.glob(f"{self.key}/{pattern}"):
            yield self._new(key)

    def iterdir(self) -> Generator[RemotePath, None, None]:
        for key in self.fs.ls(self.key, detail=False):
            yield self._new(key)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.key)

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def write_bytes(self, data: Buffer) -> int:  # Buffer: collections.abc from Python 3.12
        """One PUT of the whole object (the store's commit point on object storage)."""
        body = bytes(data)
        self.fs.pipe_file(self.key, body)
        return len(body)

    def create_exclusive(self, data: bytes) -> None:
        """PUT only if no object exists (``If-None-Match: *``); FileExistsError otherwise."""
        import errno

        try:
            self.fs.pipe_file(self.key, data, mode="create")
        except FileExistsError:
            raise
        except OSError as exc:  # some servers leave out the failed condition's name
            if exc.errno == errno.EINVAL or "Precondition" in str(exc):
                raise FileExistsError(str(self)) from exc
            raise

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Object stores have no folders: a key's prefix exists once an object is under it."""

    def chmod(self, mode: int, *, follow_symlinks: bool = True) -> None:
        """Access to a bucket is the bucket's policy, not a file mode."""
