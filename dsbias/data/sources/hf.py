"""``hf`` sources: a Hugging Face ``datasets`` dataset on local disk, read offline.

``path`` is a directory written by ``save_to_disk`` (a ``DatasetDict`` or one ``Dataset``: memory-mapped Arrow
files, read in place), or a local dataset directory that ``datasets.load_dataset`` reads (parquet, csv,
imagefolder...; ``datasets`` converts it once into its cache). ``split`` picks the split (it may be empty when
there is one). The image column is ``image_column``, or the first ``Image`` / binary column (:mod:`.columnar`);
with a ``source_column`` one entry gives one source per value (a ``ClassLabel`` gives its class names).

An item is ``<split>:<row>``; reading one is one row of the memory-mapped table, in any process or DataLoader
worker (a worker reopens the dataset by path when it was not forked with it). ``datasets`` is an optional
extra (``pip install -e '.[hf]'``); nothing here goes to the network (a path that is not a local directory
stops at config load).
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import DecodeError, ImageInfo, decode_image
from dsbias.data.sources import columnar
from dsbias.data.sources.base import import_extra, native_info, one_per_name
from dsbias.typedconfig import ConfigError

NAMELESS = "dataset"  # the split name of a saved Dataset that has none


def requires(cfg: SourceConfig) -> tuple[str, ...]:
    return ("datasets",)


@functools.lru_cache(maxsize=8)
def _load(root: str, split: str) -> Any:
    """What ``datasets`` makes of ``root``: a ``DatasetDict`` or a ``Dataset``; once per process."""
    datasets = import_extra("datasets", "an hf source")
    path = Path(root)
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(root)  # memory-maps the Arrow files where they are
    return datasets.load_dataset(root, split=split or None)


def open_split(root: str, split: str, key: str) -> tuple[str, Any]:
    """``(split name, Dataset)`` of the dataset at ``root``.

    Raises:
        ConfigError: Not a directory, not a dataset, or the split is unknown / needed (names the splits).
    """
    datasets = import_extra("datasets", f"{key} (kind hf)")
    if not Path(root).is_dir():
        raise ConfigError(f"{key}.path: {root} is not a directory (a save_to_disk dataset or a local dataset)")
    try:
        obj = _load(root, split)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise ConfigError(f"{key}: datasets cannot load {root} (split '{split}'): {e}") from None
    if isinstance(obj, datasets.DatasetDict):
        names = sorted(obj)
        if not split and len(names) == 1:
            split = names[0]
        if split not in obj:
            raise ConfigError(f"{key}.split: {'set one of' if not split else f'no split {split!r};'} "
                              f"{root} has splits {names}")
        return split, obj[split]
    name = str(obj.split) if obj.split is not None else ""
    if split and name and split != name:
        raise ConfigError(f"{key}.split: {root} holds the '{name}' split only, not '{split}'")
    if split and not name:
        raise ConfigError(f"{key}.split: {root} holds one dataset with no split name; set split to ''")
    return split or name or NAMELESS, obj


def class_names(ds: Any, column: str) -> list[str] | None:
    """The names of a ``ClassLabel`` column, else None."""
    names = getattr(ds.features.get(column), "names", None)
    return list(names) if names else None


@functools.lru_cache(maxsize=8)
def value_rows(root: str, split: str, column: str) -> tuple[dict[str, np.ndarray], int]:
    """Rows of each value of ``column`` (that column only) and the count of null values; cached per process."""
    _, ds = open_split(root, split, "data.sources[...]")
    table = ds.with_format("arrow", columns=[column])[:]
    return columnar.rows_by_value(table.column(column), class_names(ds, column))


class HfSource:
    """The rows of one split of a dataset on disk (those with one source value, when the entry selects one)."""

    def __init__(self, cfg: SourceConfig, max_pixels: int) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.max_pixels = max_pixels
        self.key = f"data.sources[{cfg.name}]"
        self.read_counts: Counter = Counter()  # native-metadata cells that failed their check (bad_sidecar)
        self.root = str(Path(cfg.path or "").expanduser().resolve())
        import_extra("datasets", f"{self.key} (kind hf)")

    def __getstate__(self) -> dict:
        # A spawned worker reopens the dataset by path; the memory-mapped table does not travel.
        return {k: v for k, v in self.__dict__.items() if k not in ("opened", "view") and not k.startswith("group_")}

    @functools.cached_property
    def opened(self) -> tuple[str, Any, str, tuple[str, ...]]:
        """``(split name, dataset, image column, columns read per row)``."""
        split, ds = open_split(self.root, self.cfg.split, self.key)
        schema = ds.features.arrow_schema
        image = columnar.image_column(schema, self.cfg.image_column, f"{self.key}.image_column", self.root)
        return split, ds, image, (image, *(c for c in columnar.NATIVE_COLUMNS if c in schema.names))

    @functools.cached_property
    def view(self) -> Any:
        """The dataset as Arrow rows of the columns read (no image decoding by ``datasets``)."""
        _, ds, _, cols = self.opened
        return ds.with_format("arrow", columns=list(cols))

    def source_column(self) -> str | None:
        """The source column when the dataset has it, else None."""
        col = self.cfg.source_column
        return col if col and col in self.opened[1].column_names else None

    @functools.cached_property
    def rows(self) -> np.ndarray | None:
        """The rows of this source's value (``[n]`` int64), or None for every row."""
        col = self.source_column()
        if not self.cfg.select or col is None:
            return None
        rows = value_rows(self.root, self.cfg.split, col)[0].get(self.cfg.select[0])
        if rows is None or not len(rows):
            raise ConfigError(f"{self.key}.select: no rows with {col} = {self.cfg.select[0]!r} in {self.root}")
        return rows

    @property
    def ignored(self) -> Counter:
        """Rows without a source value (``null_source``), with a source column; rows whose native-metadata
        columns failed their check (``bad_sidecar``)."""
        if self.rows is None:
            return Counter(self.read_counts)
        nulls = value_rows(self.root, self.cfg.split, self.source_column())[1]
        return Counter({"null_source": nulls} if nulls else {}) + self.read_counts

    def sample_order(self, seed: int):
        split, ds = self.opened[:2]
        rows = self.rows
        if not len(ds):
            raise ConfigError(f"{self.key}: split '{split}' of {self.root} has no rows")
        if rows is None:
            return (f"{split}:{r}" for r in columnar.seeded_rows(len(ds), seed, self.name))
        return (f"{split}:{int(rows[k])}" for k in columnar.seeded_rows(len(rows), seed, self.name))

    def read_cells(self, item: str) -> tuple[bytes, dict]:
        """The image bytes of one item and its native-metadata columns."""
        split, row = item.rsplit(":", 1)
        if split != self.opened[0]:
            raise ConfigError(f"{self.key}.split: the manifest's item {item!r} is from split '{split}', the "
                              f"source reads '{self.opened[0]}'")
        if not 0 <= int(row) < len(self.view):
            raise DecodeError("missing", f"{item}: the split has {len(self.view)} rows (dataset changed?)")
        table = self.view[int(row)]
        return columnar.cell_bytes(table.column(self.opened[2])[0], Path(self.root)), columnar.native_meta(table, 0)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        data, meta = self.read_cells(item)
        img, info = decode_image(data, self.max_pixels)
        return img, native_info(info, meta, self.read_counts)

    def read_bytes(self, item: str) -> bytes:
        """The image as stored (for ``tools/prepare.py``)."""
        return self.read_cells(item)[0]


def column_value(source: HfSource, item: str, column: str) -> object:
    """The value of ``column`` in the item's row (``data.group={column: NAME}``), read from that column only.

    Raises:
        KeyError: The dataset has no such column.
    """
    ds = source.opened[1]
    if column not in ds.column_names:
        raise KeyError(f"{source.root} (split '{source.opened[0]}') has no column '{column}'")
    key = f"group_view_{column}"  # one Arrow view of the column per source, not one per item
    if key not in source.__dict__:
        source.__dict__[key] = ds.with_format("arrow", columns=[column])
    view = source.__dict__[key]
    return view[int(item.rsplit(":", 1)[1])].column(column)[0].as_py()


def expand(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per value of the source column; a dataset without one is a single source."""
    src = HfSource(cfg, data.max_pixels)
    col = src.source_column()
    if col is None:
        if cfg.select:
            raise ConfigError(f"{src.key}.select: {cfg.path} has no '{cfg.source_column}' column")
        return [cfg]
    values = value_rows(src.root, cfg.split, col)[0]
    columnar.check_source_count(values, f"{src.key}.source_column", cfg.path)
    return one_per_name(cfg, sorted(values), f"'{col}' values")


def create(cfg: SourceConfig, data: DataConfig) -> HfSource:
    return HfSource(cfg, data.max_pixels)
