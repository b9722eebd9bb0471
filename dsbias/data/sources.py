"""Sources: named image collections behind one small interface.

A source lists its items in a seeded random order (:meth:`Source.sample_order`) and reads one item into an
RGB image plus its native :class:`ImageInfo` (:meth:`Source.read`), raising :class:`DecodeError` for an item
that cannot be used. Items are strings (a file path, a generator id); the manifest stores them.

New kinds register with :func:`register_source`; :func:`create_source` builds one from its config.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from dsbias.config import DataConfig, SourceConfig
from dsbias.data.decode import IMAGE_EXTENSIONS, ImageInfo, decode_image
from dsbias.data.toy import make_signature, render_toy, stable_seed


class Source(Protocol):
    """What every source kind provides."""

    name: str

    def sample_order(self, seed: int) -> Iterable[str]:
        """All items, in a random order that depends only on ``seed`` (uniform over the whole source)."""
        ...

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        """Decode one item. Raises :class:`DecodeError` when it cannot be used."""
        ...


class FolderSource:
    """All image files under a directory, recursively (by extension; symlinks followed)."""

    def __init__(self, name: str, path: str | Path, max_pixels: int) -> None:
        self.name = name
        self.root = Path(path).expanduser()
        self.max_pixels = max_pixels
        if not self.root.is_dir():
            raise FileNotFoundError(f"source '{name}': folder {self.root} does not exist")

    def list_files(self) -> list[str]:
        """Every image path under the root, sorted (so the order is the same on every machine)."""
        files = []
        for dirpath, _, names in os.walk(self.root, followlinks=True):
            files.extend(os.path.join(dirpath, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
        files.sort()
        return files

    def sample_order(self, seed: int) -> list[str]:
        files = self.list_files()
        if not files:
            raise FileNotFoundError(f"source '{self.name}': no image files under {self.root}")
        order = np.random.default_rng(stable_seed("order", seed, self.name)).permutation(len(files))
        return [files[i] for i in order]

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(item, self.max_pixels)


class ToySource:
    """A procedural source (see :mod:`dsbias.data.toy`); items are integers as text."""

    def __init__(self, name: str, seed: int, signature_id: int, num_toy: int, cfg: SourceConfig, size: int):
        self.name = name
        self.seed = seed
        self.signature = make_signature(signature_id, num_toy, cfg.bias, cfg.signature, cfg.native_size or size)

    def sample_order(self, seed: int) -> Iterable[str]:
        # Toy items are i.i.d. already; the content seed is the data seed, so item order can be 0, 1, 2...
        return (str(i) for i in itertools.count())

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        img, data = render_toy(self.seed, self.name, int(item), self.signature)
        fmt = "JPEG" if self.signature.jpeg_quality is not None else "PNG"
        return img, ImageInfo(width=img.width, height=img.height, format=fmt, bytes=len(data))


SourceFactory = Callable[[SourceConfig, DataConfig, int], Source]
_KINDS: dict[str, SourceFactory] = {}


def register_source(kind: str) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator: make ``kind`` available as ``data.sources[i].kind``."""

    def wrap(factory: SourceFactory) -> SourceFactory:
        _KINDS[kind] = factory
        return factory

    return wrap


@register_source("folder")
def _folder(cfg: SourceConfig, data: DataConfig, position: int) -> Source:
    return FolderSource(cfg.name, cfg.path or "", data.max_pixels)


@register_source("toy")
def _toy(cfg: SourceConfig, data: DataConfig, position: int) -> Source:
    toys = [s for s in data.sources if s.kind == "toy"]
    rank = [s.name for s in toys].index(cfg.name)
    sig_id = cfg.signature_id if cfg.signature_id is not None else rank
    return ToySource(cfg.name, data.seed, sig_id, len(toys), cfg, data.image_size)


def source_kinds() -> list[str]:
    """Registered source kinds."""
    return sorted(_KINDS)


def create_source(cfg: SourceConfig, data: DataConfig) -> Source:
    """Build the source that ``cfg`` describes.

    Raises:
        ValueError: Unknown kind (the message names the config key).
        FileNotFoundError: A missing folder or file.
    """
    if cfg.kind not in _KINDS:
        raise ValueError(f"data.sources[{cfg.name}].kind: unknown kind '{cfg.kind}'; known: {source_kinds()}")
    position = [s.name for s in data.sources].index(cfg.name)
    return _KINDS[cfg.kind](cfg, data, position)


def create_sources(data: DataConfig) -> dict[str, Source]:
    """All configured sources by name, in config order."""
    return {s.name: create_source(s, data) for s in data.sources}
