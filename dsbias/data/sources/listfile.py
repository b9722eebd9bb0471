"""``list`` sources: a ``.txt``, ``.csv`` or ``.parquet`` file of image paths, optionally with a source column.

With a source column one entry gives one source per value (:func:`expand`, sorted), each selecting exactly one.
A ``.parquet`` list needs the ``parquet`` extra (pyarrow) and reads only its path and source columns.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import ImageInfo, decode_image
from dsbias.data.sources.base import import_extra, one_per_name, seeded_order
from dsbias.errors import MissingFileError
from dsbias.typedconfig import ConfigError


@functools.lru_cache(maxsize=8)
def _read_table(path: str, mtime: float, wanted: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` of a ``.csv`` or ``.parquet`` list file; cached per process (keyed by mtime).

    A ``.parquet`` list reads only the ``wanted`` columns: it may carry captions, embeddings or the images themselves.
    """
    del mtime  # only part of the cache key
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    if suffix == ".parquet":
        pq = import_extra("pyarrow.parquet", f"{p} (a .parquet list; or use a .csv/.txt list)")
        cols = pq.read_schema(p).names
        return cols, pq.read_table(p, columns=[c for c in wanted if c in cols]).to_pylist()
    raise ConfigError(f"{p}: a list source must be .txt, .csv or .parquet")


@functools.lru_cache(maxsize=8)
def _read_list(path: str, path_column: str, source_column: str, mtime: float) -> tuple[list[str], list[str] | None]:
    """``(paths, sources or None)`` of a list file; cached per process (keyed by mtime)."""
    p = Path(path)
    if p.suffix.lower() == ".txt":
        lines = [ln.strip() for ln in p.read_text().splitlines()]
        return [ln for ln in lines if ln and not ln.startswith("#")], None
    cols, rows = _read_table(path, mtime, (path_column, source_column))
    if path_column not in cols:
        raise ConfigError(f"{p}: no column '{path_column}' (columns: {cols}); set path_column")
    paths = [str(r[path_column]) for r in rows]
    sources = [str(r[source_column]) for r in rows] if source_column in cols else None
    return paths, sources


@functools.lru_cache(maxsize=8)
def _column_of(path: str, path_column: str, column: str, mtime: float) -> dict[str, str]:
    """``{image path: value of column}`` of a ``.csv``/``.parquet`` list file."""
    p = Path(path)
    if p.suffix.lower() == ".txt":
        raise ConfigError(f"data.group.column={column}: {p} is a .txt list without columns; use a .csv list")
    cols, rows = _read_table(path, mtime, (path_column, column))
    if column not in cols:
        raise ConfigError(f"data.group.column={column}: {p} has no such column (columns: {cols})")
    return {str(r[path_column]): str(r[column]) for r in rows}


def requires(cfg: SourceConfig) -> tuple[str, ...]:
    return ("pyarrow",) if (cfg.path or "").lower().endswith(".parquet") else ()


def read_list(cfg: SourceConfig) -> tuple[list[str], list[str] | None]:
    """The paths of a list file and, if it has a source column, each path's source."""
    p = Path(cfg.path or "").expanduser()
    if not p.is_file():
        raise MissingFileError(f"data.sources[{cfg.name}].path: list file {p} does not exist (fix the path)")
    return _read_list(str(p.resolve()), cfg.path_column, cfg.source_column, p.stat().st_mtime)


def expand(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per value of the source column; a list without one is a single source."""
    _, sources = read_list(cfg)
    if sources is None:
        if cfg.select:
            raise ConfigError(f"data.sources[{cfg.name}].select: {cfg.path} has no '{cfg.source_column}' column")
        return [cfg]
    return one_per_name(cfg, sorted(set(sources)), f"'{cfg.source_column}' values")


class ListSource:
    """The images a list file names (for one source value when it has a source column).

    Items are the paths as written; relative ones are joined to ``root`` (default: the list file's folder).
    """

    def __init__(self, cfg: SourceConfig, max_pixels: int) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.max_pixels = max_pixels
        self.root = Path(cfg.root).expanduser() if cfg.root else Path(cfg.path or "").expanduser().parent

    @functools.cached_property
    def items(self) -> list[str]:
        """The paths listed for this source, sorted, each once; read on first use only (not to read an image)."""
        paths, sources = read_list(self.cfg)
        if sources is not None:
            paths = [p for p, s in zip(paths, sources, strict=True) if s == self.cfg.select[0]]
        if not paths:
            raise MissingFileError(f"data.sources[{self.name}].path: {self.cfg.path} lists no images for it (check "
                                   "its path and source columns)")
        return sorted(set(paths))  # a path listed twice is one image

    def sample_order(self, seed: int) -> list[str]:
        return seeded_order(self.items, seed, self.name)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(self.root / item, self.max_pixels)  # an absolute item ignores the root

    def read_bytes(self, item: str) -> bytes:
        """The item's file as stored (for ``tools/prepare.py``)."""
        return (self.root / item).read_bytes()


def column_value(source: ListSource, item: str, column: str) -> str:
    """The value of ``column`` in the list file's row for ``item`` (``data.group={column: NAME}``)."""
    p = Path(source.cfg.path or "").expanduser()
    return _column_of(str(p.resolve()), source.cfg.path_column, column, p.stat().st_mtime)[item]


def create(cfg: SourceConfig, data: DataConfig) -> ListSource:
    return ListSource(cfg, data.max_pixels)
