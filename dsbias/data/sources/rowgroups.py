"""Parquet reads for the ``parquet`` kind: footers and row groups, cached per process.

Each read opens the file, reads and closes it: no handle outlives a call, so a DataLoader worker forked from a
process that has read (or any other process) never shares one. The caches hold memory only; a forked child
starts with an empty row-group cache and a fresh lock (:func:`os.register_at_fork`), so it never inherits a
lock held by another thread. Keys carry the file's size and mtime, so a rewritten file is read again.

Errors become :class:`~dsbias.data.decode.DecodeError` reasons, counted like bad image files: ``missing``
(the file went away), ``unreadable_file`` (no valid footer), ``corrupt_row_group`` (a row group that cannot be
read, which fails alone; the failure is remembered so its other rows do not read it again).
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from typing import Any

from dsbias.data.decode import DecodeError

# Row groups kept per process, in bytes of Arrow memory. It pays when a source's sampled rows share row groups
# (a small source, or a large fraction of one); at 8 DataLoader workers it is 1 GiB in all.
CACHE_BYTES = 128 << 20
_FAILED_MAX = 4096  # remembered failing row groups per process


def _stamp(path: str) -> tuple[int, int]:
    try:
        s = os.stat(path)
    except OSError as e:
        raise DecodeError("missing", f"{path}: {e.strerror}") from None
    return s.st_size, s.st_mtime_ns


def _errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    return (pa.ArrowException, OSError, ValueError)


@functools.lru_cache(maxsize=1024)
def _footer(path: str, stamp: tuple[int, int]) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path)
    except _errors() as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from None


def metadata(path: str) -> Any:
    """The file's ``pyarrow.parquet.FileMetaData``. Raises :class:`DecodeError` (``missing``,
    ``unreadable_file``)."""
    return _footer(path, _stamp(path))


def try_metadata(path: str) -> Any:
    """:func:`metadata`, or the reason it failed (a string)."""
    try:
        return metadata(path)
    except DecodeError as e:
        return e.reason if not e.detail else f"{e.reason}: {e.detail}"


@functools.lru_cache(maxsize=1024)
def _schema(path: str, stamp: tuple[int, int]) -> Any:
    return _footer(path, stamp).schema.to_arrow_schema()


def schema(path: str) -> Any:
    """The file's Arrow schema (with the ``huggingface`` metadata ``datasets`` writes)."""
    return _schema(path, _stamp(path))


class RowGroupCache:
    """Least recently used row groups, up to :data:`CACHE_BYTES`, and the row groups known to fail."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.tables: OrderedDict[tuple, Any] = OrderedDict()
        self.failed: OrderedDict[tuple, str] = OrderedDict()
        self.used = 0

    def get(self, key: tuple) -> Any:
        with self.lock:
            if key in self.failed:
                raise DecodeError("corrupt_row_group", self.failed[key])
            table = self.tables.get(key)
            if table is not None:
                self.tables.move_to_end(key)
            return table

    def put(self, key: tuple, table: Any) -> None:
        size = table.nbytes
        if size > CACHE_BYTES:
            return
        with self.lock:
            if key not in self.tables:
                self.tables[key] = table
                self.used += size
            while self.used > CACHE_BYTES:
                _, old = self.tables.popitem(last=False)
                self.used -= old.nbytes

    def fail(self, key: tuple, detail: str) -> None:
        with self.lock:
            self.failed[key] = detail
            if len(self.failed) > _FAILED_MAX:
                self.failed.popitem(last=False)


CACHE = RowGroupCache()


def read(path: str, group: int, columns: tuple[str, ...], cache: bool = True) -> Any:
    """Columns ``columns`` of row group ``group`` of ``path`` as a ``pyarrow.Table`` (one read).

    Args:
        path: The parquet file.
        group: Row-group number.
        columns: Column names (a struct column comes whole).
        cache: Use and fill the per-process cache (off for one-off scans of a column).

    Raises:
        DecodeError: ``missing``, ``unreadable_file`` or ``corrupt_row_group``.
    """
    import pyarrow.parquet as pq

    stamp = _stamp(path)
    key = (path, stamp, group, columns)
    if cache and (table := CACHE.get(key)) is not None:
        return table
    md = _footer(path, stamp)
    try:
        with pq.ParquetFile(path, metadata=md) as pf:
            # One thread: a read of a few columns of one row group gains nothing from Arrow's pool, and loader
            # workers already use every core.
            table = pf.read_row_group(group, columns=list(columns), use_threads=False)
    except _errors() as e:
        detail = f"{path} row group {group}: {e}"
        CACHE.fail(key, detail)
        raise DecodeError("corrupt_row_group", detail) from None
    if cache:
        CACHE.put(key, table)
    return table
