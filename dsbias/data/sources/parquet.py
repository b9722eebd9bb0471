"""``parquet`` sources: images stored inside parquet files, one row per image (the Hugging Face layout).

``path`` is one file, a directory (every ``*.parquet`` under it) or a glob (``/data/cc/train-*.parquet``,
``**`` allowed). The image column is ``image_column``, or the first binary or ``{bytes, path}`` struct column
(:mod:`.columnar`). With a ``source_column`` in the files, one entry gives one source per value
(:func:`expand`), as the ``list`` kind does; a ``ClassLabel`` column gives its class names.

An item is ``<file>::<row group>:<row>`` (file relative to the path's folder, row within the row group).
Indexing reads the files' footers only (row counts per row group), so the seeded order is uniform over every row
of every file without reading a row. Reading one image reads its row group's image column (plus the native
metadata columns, when the file has them), through a per-process cache (:mod:`.rowgroups`); nothing open is
kept, so it works the same in any process and DataLoader worker.

A file whose footer is unreadable is skipped and counted (``unreadable_file``); a row group that cannot be read
fails its rows alone (``corrupt_row_group``, counted per row drawn); a null cell is ``null_image``.
"""

from __future__ import annotations

import functools
import glob
import itertools
import logging
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import DecodeError, ImageInfo, decode_image
from dsbias.data.sources import columnar, rowgroups
from dsbias.data.sources.base import import_extra, native_info, one_per_name
from dsbias.typedconfig import ConfigError

logger = logging.getLogger(__name__)

_ITEM = re.compile(r"^(?P<file>.+)::(?P<group>\d+):(?P<row>\d+)$")


def requires(cfg: SourceConfig) -> tuple[str, ...]:
    return ("pyarrow",)


def find_files(pattern: str, key: str) -> tuple[Path, list[Path]]:
    """``(base, files)``: the folder items are relative to, and the parquet files ``pattern`` names, sorted.

    Raises:
        ConfigError: Nothing matches.
    """
    p = Path(pattern).expanduser()
    if p.is_file():
        return p.parent, [p]
    if p.is_dir():
        base, files = p, [f for f in p.rglob("*.parquet") if f.is_file() and not f.name.startswith(".")]
    else:
        fixed = list(itertools.takewhile(lambda part: not any(c in part for c in "*?["), p.parts[:-1]))
        base = Path(*fixed) if fixed else Path(".")
        files = [Path(f) for f in glob.glob(str(p), recursive=True) if os.path.isfile(f)]
    if not files:
        raise ConfigError(f"{key}: no parquet files at {pattern}")
    return base, sorted(files)


@dataclass(frozen=True)
class Index:
    """Where every row of a source's files is: row groups laid end to end over the files.

    Attributes:
        files: The readable files, relative to the base.
        starts: ``[G + 1]`` int64: the first global row of each row group, then the total.
        group_file: ``[G]`` the file (index into ``files``) of each row group.
        group_index: ``[G]`` each row group's number within its file.
        ignored: Files skipped (``unreadable_file``).
        schemas: ``(file, Arrow schema)`` for each distinct schema among the files (usually one), for the checks.
    """

    files: list[str]
    starts: np.ndarray
    group_file: np.ndarray
    group_index: np.ndarray
    ignored: Counter
    schemas: list[tuple[str, Any]]

    @property
    def rows(self) -> int:
        return int(self.starts[-1])

    def item(self, row: int) -> str:
        """The item of global row ``row``."""
        g = int(np.searchsorted(self.starts, row, side="right")) - 1
        return f"{self.files[self.group_file[g]]}::{self.group_index[g]}:{row - self.starts[g]}"


@functools.lru_cache(maxsize=16)
def index_files(base: str, files: tuple[str, ...], stamps: tuple[tuple[int, int], ...]) -> Index:
    """Read every file's footer (a thread pool over files); cached per process, keyed by size and mtime."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        metas = list(pool.map(rowgroups.try_metadata, files))
    kept, sizes, gfile, gindex = [], [], [], []
    ignored: Counter = Counter()
    schemas: dict[str, tuple[str, Any]] = {}
    for f, md in zip(files, metas):
        if isinstance(md, str):
            logger.warning("parquet file %s: unreadable (%s); skipped", f, md)
            ignored["unreadable_file"] += 1
            continue
        for g in range(md.num_row_groups):
            sizes.append(md.row_group(g).num_rows)
            gfile.append(len(kept))
            gindex.append(g)
        schema = md.schema.to_arrow_schema()
        schemas.setdefault(schema.to_string(show_schema_metadata=False), (f, schema))
        kept.append(os.path.relpath(f, base))
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
    return Index(kept, starts, np.array(gfile, dtype=np.int64), np.array(gindex, dtype=np.int64), ignored,
                 list(schemas.values()))


def _stamps(files: list[Path]) -> tuple[tuple[int, int], ...]:
    return tuple((s.st_size, s.st_mtime_ns) for s in map(os.stat, files))


@functools.lru_cache(maxsize=16)
def value_rows(base: str, files: tuple[str, ...], stamps: tuple[tuple[int, int], ...],
               column: str) -> tuple[dict[str, np.ndarray], Counter]:
    """Global rows of each value of ``column`` over the files (that column only, per row group).

    A row group whose column cannot be read is left out and counted (``unreadable_row_group``); null values
    are counted per row (``null_source``). Cached per process.
    """
    import pyarrow as pa

    index = index_files(base, files, stamps)
    names = columnar.hf_class_names(index.schemas[0][1], column)
    typ = pa.string() if names is None else pa.int64()  # a ClassLabel column holds class numbers

    def group(g: int) -> Any:
        path = os.path.join(base, index.files[index.group_file[g]])
        try:
            return rowgroups.read(path, int(index.group_index[g]), (column,), cache=False).column(column).cast(typ)
        except DecodeError:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        cols = list(pool.map(group, range(len(index.group_file))))
    parts, ignored, lost = [], Counter(), 0
    for g, col in enumerate(cols):
        if col is None:
            n = int(index.starts[g + 1] - index.starts[g])
            ignored["unreadable_row_group"] += 1
            lost += n
            parts.append(pa.nulls(n, typ))  # keeps the global row numbers of the groups after it
        else:
            parts.extend(col.chunks)
    values, nulls = columnar.rows_by_value(pa.chunked_array(parts, typ), names)
    if nulls - lost:
        ignored["null_source"] += nulls - lost
    return values, ignored


class ParquetSource:
    """The rows of a set of parquet files (those with one source value, when the entry selects one)."""

    def __init__(self, cfg: SourceConfig, max_pixels: int) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.max_pixels = max_pixels
        self.key = f"data.sources[{cfg.name}]"
        self.read_counts: Counter = Counter()  # native-metadata cells that failed their check (bad_sidecar)
        import_extra("pyarrow.parquet", f"{self.key} (kind parquet)")
        self.base, self.files = find_files(cfg.path or "", f"{self.key}.path")

    @functools.cached_property
    def files_key(self) -> tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]]:
        """``(base, files, (size, mtime) of each)``: what the per-process index caches are keyed by."""
        return str(self.base), tuple(map(str, self.files)), _stamps(self.files)

    @functools.cached_property
    def index(self) -> Index:
        """Every file's row groups; checks the image column in every readable file."""
        index = index_files(*self.files_key)
        if not index.rows:
            raise ConfigError(f"{self.key}.path: no readable rows in {len(self.files)} parquet files at "
                              f"{self.cfg.path}")
        for path, schema in index.schemas:
            columnar.image_column(schema, self.cfg.image_column, f"{self.key}.image_column", path)
        return index

    def source_column(self) -> str | None:
        """The source column when the files have it (every readable one), else None."""
        col = self.cfg.source_column
        has = [col in schema.names for _, schema in self.index.schemas] if col else [False]
        if any(has) and not all(has):
            missing = self.index.schemas[has.index(False)][0]
            raise ConfigError(f"{self.key}.source_column: '{col}' is in some files but not in {missing}")
        return col if all(has) else None

    def values(self) -> tuple[dict[str, np.ndarray], Counter]:
        """Rows by source value (see :func:`value_rows`)."""
        col = self.source_column()
        assert col is not None
        return value_rows(*self.files_key, col)

    @functools.cached_property
    def rows(self) -> np.ndarray | None:
        """The global rows of this source's value (``[n]`` int64), or None for every row."""
        if not self.cfg.select or self.source_column() is None:
            return None
        rows = self.values()[0].get(self.cfg.select[0])
        if rows is None or not len(rows):
            raise ConfigError(f"{self.key}.select: no rows with {self.cfg.source_column} = {self.cfg.select[0]!r} "
                              f"in {self.cfg.path}")
        return rows

    @property
    def ignored(self) -> Counter:
        """What indexing skipped: unreadable files (and row groups, null source values with a source column);
        rows whose native-metadata columns failed their check (``bad_sidecar``)."""
        out = Counter(self.index.ignored) + self.read_counts
        if self.rows is not None:
            out.update(self.values()[1])
        return out

    def sample_order(self, seed: int):
        index, rows = self.index, self.rows
        if rows is None:
            return (index.item(r) for r in columnar.seeded_rows(index.rows, seed, self.name))
        return (index.item(int(rows[k])) for k in columnar.seeded_rows(len(rows), seed, self.name))

    def read_cells(self, item: str) -> tuple[bytes, dict]:
        """The image bytes of one item and its native-metadata columns."""
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"not a parquet item (expected <file>::<row group>:<row>): {item!r}")
        path = str(self.base / m["file"])
        schema = rowgroups.schema(path)  # DecodeError if the file went away or is unreadable
        image = columnar.image_column(schema, self.cfg.image_column, f"{self.key}.image_column", path)
        cols = (image, *(c for c in columnar.NATIVE_COLUMNS if c in schema.names))
        table = rowgroups.read(path, int(m["group"]), cols)
        row = int(m["row"])
        if row >= table.num_rows:
            raise DecodeError("missing", f"{item}: the row group has {table.num_rows} rows (file changed?)")
        return columnar.cell_bytes(table.column(image)[row], Path(path).parent), columnar.native_meta(table, row)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        data, meta = self.read_cells(item)
        img, info = decode_image(data, self.max_pixels)
        return img, native_info(info, meta, self.read_counts)

    def read_bytes(self, item: str) -> bytes:
        """The image as stored (for ``tools/prepare.py``)."""
        return self.read_cells(item)[0]


def column_value(source: ParquetSource, item: str, column: str) -> object:
    """The value of ``column`` in the item's row (``data.group={column: NAME}``): one read of that column of the
    item's row group, cached per process like the image reads.

    Raises:
        KeyError: The item's file has no such column.
    """
    m = _ITEM.match(item)
    if m is None:
        raise ValueError(f"not a parquet item (expected <file>::<row group>:<row>): {item!r}")
    path = str(source.base / m["file"])
    if column not in rowgroups.schema(path).names:
        raise KeyError(f"{path} has no column '{column}'")
    return rowgroups.read(path, int(m["group"]), (column,)).column(column)[int(m["row"])].as_py()


def expand(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per value of the source column; files without one are a single source."""
    src = ParquetSource(cfg, data.max_pixels)
    if src.source_column() is None:
        if cfg.select:
            raise ConfigError(f"{src.key}.select: {cfg.path} has no '{cfg.source_column}' column")
        return [cfg]
    values = src.values()[0]
    columnar.check_source_count(values, f"{src.key}.source_column", cfg.path)
    return one_per_name(cfg, sorted(values), f"'{cfg.source_column}' values")


def create(cfg: SourceConfig, data: DataConfig) -> ParquetSource:
    return ParquetSource(cfg, data.max_pixels)
