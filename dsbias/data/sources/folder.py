"""``folder`` sources: every image file under a directory, recursively (by extension; symlinks followed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import IMAGE_EXTENSIONS, ImageInfo, decode_image
from dsbias.data.sources.base import list_images, seeded_order
from dsbias.errors import MissingFileError


class FolderSource:
    """All image files under a directory; items are paths relative to the root."""

    def __init__(self, name: str, path: str | Path, max_pixels: int) -> None:
        self.name = name
        self.root = Path(path).expanduser()
        self.max_pixels = max_pixels
        self.ignored: Counter = Counter()  # what the listing skipped (symlink loops...): in the manifest summary
        if not self.root.is_dir():
            raise MissingFileError(f"data.sources[{name}].path: folder {self.root} does not exist (fix the path)")

    def list_files(self) -> list[str]:
        """Every image path under the root, relative to it, sorted."""
        self.ignored.clear()
        return list_images(self.root, self.ignored)

    def sample_order(self, seed: int) -> list[str]:
        files = self.list_files()
        if not files:
            raise MissingFileError(f"data.sources[{self.name}].path: no image files under {self.root} (extensions "
                                   f"{', '.join(IMAGE_EXTENSIONS)}; point it at the folder that holds them)")
        return seeded_order(files, seed, self.name)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(self.root / item, self.max_pixels)

    def read_bytes(self, item: str) -> bytes:
        """The item's file as stored (for ``tools/prepare.py``)."""
        return (self.root / item).read_bytes()


def create(cfg: SourceConfig, data: DataConfig) -> FolderSource:
    return FolderSource(cfg.name, cfg.path or "", data.max_pixels)
