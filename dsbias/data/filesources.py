"""File-based multi-source kinds: ``imagefolder`` (the paper's ``root/{train,val}/<source>/`` layout) and
``list`` (a ``.txt``, ``.csv`` or ``.parquet`` file of image paths, optionally with a source column).

One config entry of either kind may stand for several sources; :func:`expand_imagefolder` and
:func:`expand_list` turn it into one entry per source (sorted by name, like torchvision's ``ImageFolder``),
each selecting exactly one, so a manifest still has one label per subfolder or column value.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from pathlib import Path

from PIL import Image

from dsbias.config import ConfigError, DataConfig, SourceConfig
from dsbias.data.decode import ImageInfo, decode_image
from dsbias.data.sources import Source, list_images, register_source, seeded_order

SPLIT_DIRS = ("train", "val")


def _one_per_name(cfg: SourceConfig, found: list[str], what: str) -> list[SourceConfig]:
    """Entries selecting one name each: ``cfg.select`` (checked against ``found``) or everything found."""
    missing = sorted(set(cfg.select) - set(found))
    if missing:
        raise ConfigError(f"data.sources[{cfg.name}].select: {missing} not found in {cfg.path} ({what}: {found})")
    if len(cfg.select) == 1:
        return [cfg]  # one source: it keeps the entry's own name
    chosen = sorted(cfg.select or found)
    if not chosen:
        raise ConfigError(f"data.sources[{cfg.name}]: no sources found in {cfg.path}")
    return [dataclasses.replace(cfg, name=n, select=[n]) for n in chosen]


# ---------------------------------------------------------------------------------------------------------
# imagefolder
# ---------------------------------------------------------------------------------------------------------


def _imagefolder_base(root: Path) -> Path:
    """``root/train`` in the paper's split layout, else ``root`` itself (one subfolder per source)."""
    return root / "train" if (root / "train").is_dir() else root


def expand_imagefolder(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per source subfolder of ``path/train`` (or of ``path`` when it has no ``train/``)."""
    root = Path(cfg.path or "").expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.sources[{cfg.name}].path: folder {root} does not exist")
    base = _imagefolder_base(root)
    found = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return _one_per_name(cfg, found, "subfolders")


class ImageFolderSource:
    """One source subfolder of an ImageFolder root; items are paths relative to the root.

    With ``root/train/<source>`` and ``root/val/<source>`` the official split is used
    (:meth:`split_order`); with ``root/<source>`` only, there is none and the manifest splits at random.
    """

    def __init__(self, name: str, root: str | Path, subdir: str, max_pixels: int) -> None:
        self.name = name
        self.root = Path(root).expanduser()
        self.subdir = subdir
        self.max_pixels = max_pixels
        self.has_split = (self.root / "train").is_dir()

    @functools.cached_property
    def files(self) -> dict[str, list[str]]:
        """Relative image paths by split (``all`` without an official split); listed on first use only."""
        dirs = {s: f"{s}/{self.subdir}" for s in SPLIT_DIRS} if self.has_split else {"all": self.subdir}
        files = {s: [f"{d}/{f}" for f in list_images(self.root / d)] if (self.root / d).is_dir() else []
                 for s, d in dirs.items()}
        if not any(files.values()):
            where = ", ".join(str(self.root / d) for d in dirs.values())
            raise FileNotFoundError(f"source '{self.name}': no image files under {where}")
        return files

    def sample_order(self, seed: int) -> list[str]:
        return seeded_order(sorted(f for fs in self.files.values() for f in fs), seed, self.name)

    def split_order(self, seed: int, split: str) -> list[str] | None:
        """The items of the official ``split`` in a seeded order, or None without an official split."""
        if not self.has_split:
            return None
        return seeded_order(self.files[split], seed, self.name, split)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(self.root / item, self.max_pixels)

    def read_bytes(self, item: str) -> bytes:
        """The item's file as stored (for ``tools/prepare.py``)."""
        return (self.root / item).read_bytes()


@register_source("imagefolder", expand=expand_imagefolder)
def _imagefolder(cfg: SourceConfig, data: DataConfig, position: int) -> Source:
    return ImageFolderSource(cfg.name, cfg.path or "", cfg.select[0], data.max_pixels)


# ---------------------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _read_list(path: str, path_column: str, source_column: str, mtime: float) -> tuple[list[str], list[str] | None]:
    """``(paths, sources or None)`` of a list file; cached per process (keyed by mtime)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".txt":
        lines = [ln.strip() for ln in p.read_text().splitlines()]
        return [ln for ln in lines if ln and not ln.startswith("#")], None
    if suffix == ".csv":
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            rows = list(reader)
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"{p}: reading a .parquet list needs pyarrow, which is not installed "
                              "(pip install pyarrow), or use a .csv/.txt list") from None
        table = pq.read_table(p)
        cols = table.column_names
        rows = table.to_pylist()
    else:
        raise ValueError(f"{p}: a list source must be .txt, .csv or .parquet")
    if path_column not in cols:
        raise ValueError(f"{p}: no column '{path_column}' (columns: {cols}); set path_column")
    paths = [str(r[path_column]) for r in rows]
    sources = [str(r[source_column]) for r in rows] if source_column in cols else None
    return paths, sources


def read_list(cfg: SourceConfig) -> tuple[list[str], list[str] | None]:
    """The paths of a list file and, if it has a source column, each path's source."""
    p = Path(cfg.path or "").expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"data.sources[{cfg.name}].path: list file {p} does not exist")
    return _read_list(str(p.resolve()), cfg.path_column, cfg.source_column, p.stat().st_mtime)


def expand_list(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per value of the source column; a list without one is a single source."""
    _, sources = read_list(cfg)
    if sources is None:
        if cfg.select:
            raise ConfigError(f"data.sources[{cfg.name}].select: {cfg.path} has no '{cfg.source_column}' column")
        return [cfg]
    return _one_per_name(cfg, sorted(set(sources)), f"'{cfg.source_column}' values")


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
            raise FileNotFoundError(f"source '{self.name}': {self.cfg.path} lists no images for it")
        return sorted(set(paths))  # a path listed twice is one image

    def sample_order(self, seed: int) -> list[str]:
        return seeded_order(self.items, seed, self.name)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(self.root / item, self.max_pixels)  # an absolute item ignores the root

    def read_bytes(self, item: str) -> bytes:
        """The item's file as stored (for ``tools/prepare.py``)."""
        return (self.root / item).read_bytes()


@register_source("list", expand=expand_list)
def _list(cfg: SourceConfig, data: DataConfig, position: int) -> Source:
    return ListSource(cfg, data.max_pixels)
