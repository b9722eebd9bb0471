"""``imagefolder`` sources: the paper's ``root/{train,val}/<source>/`` layout (or ``root/<source>/``).

One config entry stands for every source subfolder (sorted, like torchvision's ``ImageFolder``):
:func:`expand` turns it into one entry per source, each selecting exactly one, so a manifest still has one
label per subfolder. With ``train/`` and ``val/`` the official split is kept (:meth:`ImageFolderSource.split_order`).
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import ImageInfo, decode_image
from dsbias.data.sources.base import list_images, one_per_name, seeded_order
from dsbias.errors import MissingFileError
from dsbias.typedconfig import ConfigError

SPLIT_DIRS = ("train", "val")


def _imagefolder_base(root: Path) -> Path:
    """``root/train`` in the paper's split layout, else ``root`` itself (one subfolder per source)."""
    return root / "train" if (root / "train").is_dir() else root


def expand(cfg: SourceConfig, data: DataConfig) -> list[SourceConfig]:
    """One entry per source subfolder of ``path/train`` (or of ``path`` when it has no ``train/``)."""
    root = Path(cfg.path or "").expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.sources[{cfg.name}].path: folder {root} does not exist")
    base = _imagefolder_base(root)
    found = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return one_per_name(cfg, found, "subfolders")


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
        self.ignored: Counter = Counter()  # what the listing skipped (symlink loops...): in the manifest summary

    @functools.cached_property
    def files(self) -> dict[str, list[str]]:
        """Relative image paths by split (``all`` without an official split); listed on first use only."""
        dirs = {s: f"{s}/{self.subdir}" for s in SPLIT_DIRS} if self.has_split else {"all": self.subdir}
        files = {s: [f"{d}/{f}" for f in list_images(self.root / d, self.ignored)] if (self.root / d).is_dir() else []
                 for s, d in dirs.items()}
        if not any(files.values()):
            where = ", ".join(str(self.root / d) for d in dirs.values())
            raise MissingFileError(f"data.sources[{self.name}]: no image files under {where} (each source "
                                   "subfolder needs images)")
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


def create(cfg: SourceConfig, data: DataConfig) -> ImageFolderSource:
    return ImageFolderSource(cfg.name, cfg.path or "", cfg.select[0], data.max_pixels)
