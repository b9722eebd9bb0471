"""Sources: named image collections behind one small interface.

A source lists its items in a seeded random order (:meth:`Source.sample_order`) and reads one item into an
RGB image plus its native :class:`ImageInfo` (:meth:`Source.read`), raising :class:`DecodeError` for an item
that cannot be used. Items are strings (a path relative to the source's root, ``shard::member@offset:size``,
a generator id); the manifest stores them, so a manifest stays valid when the data moves and the config's
paths follow. A source with an official split also has ``split_order(seed, split)`` (``None`` if absent).

New kinds register with :func:`register_source`; a kind whose one config entry stands for several sources
(``imagefolder``, ``list``) also gives an ``expand`` function, and :func:`expand_sources` applies it before
anything is sampled. :func:`create_sources` builds the readers of the expanded config.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from dsbias.config import ConfigError, DataConfig, SourceConfig, check_source_count
from dsbias.data.decode import IMAGE_EXTENSIONS, ImageInfo, content_hash, decode_image
from dsbias.data.toy import make_signature, render_toy
from dsbias.seeds import stable_seed


class Source(Protocol):
    """What every source kind provides."""

    name: str

    def sample_order(self, seed: int) -> Iterable[str]:
        """All items, in a random order that depends only on ``seed`` (uniform over the whole source)."""
        ...

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        """Decode one item. Raises :class:`DecodeError` when it cannot be used."""
        ...


def list_images(root: Path) -> list[str]:
    """Every image file under ``root`` (recursively, symlinks followed) as a sorted relative path."""
    files = []
    for dirpath, _, names in os.walk(root, followlinks=True):
        rel = os.path.relpath(dirpath, root)
        files.extend(os.path.normpath(os.path.join(rel, n)) for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
    files.sort()  # the same order on every machine, so a seed means the same draw everywhere
    return files


def seeded_order(items: list[str], seed: int, *key: object) -> list[str]:
    """``items`` in a random order that depends only on ``seed`` and ``key`` (uniform over all of them)."""
    order = np.random.default_rng(stable_seed("order", seed, *key)).permutation(len(items))
    return [items[i] for i in order]


class FolderSource:
    """All image files under a directory, recursively (by extension; symlinks followed).

    Items are paths relative to the root.
    """

    def __init__(self, name: str, path: str | Path, max_pixels: int) -> None:
        self.name = name
        self.root = Path(path).expanduser()
        self.max_pixels = max_pixels
        if not self.root.is_dir():
            raise FileNotFoundError(f"source '{name}': folder {self.root} does not exist")

    def list_files(self) -> list[str]:
        """Every image path under the root, relative to it, sorted."""
        return list_images(self.root)

    def sample_order(self, seed: int) -> list[str]:
        files = self.list_files()
        if not files:
            raise FileNotFoundError(f"source '{self.name}': no image files under {self.root}")
        return seeded_order(files, seed, self.name)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        return decode_image(self.root / item, self.max_pixels)

    def read_bytes(self, item: str) -> bytes:
        """The item's file as stored (for ``tools/prepare.py``)."""
        return (self.root / item).read_bytes()


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
        return img, ImageInfo(width=img.width, height=img.height, format=fmt, bytes=len(data),
                              sha1=content_hash(data), mode="RGB")

    def read_bytes(self, item: str) -> bytes:
        """The item encoded as its signature says (JPEG or PNG)."""
        return render_toy(self.seed, self.name, int(item), self.signature)[1]


SourceFactory = Callable[[SourceConfig, DataConfig, int], Source]
Expander = Callable[[SourceConfig, DataConfig], list[SourceConfig]]
_KINDS: dict[str, SourceFactory] = {}
_EXPANDERS: dict[str, Expander] = {}


def register_source(kind: str, expand: Expander | None = None) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator: make ``kind`` available as ``data.sources[i].kind``.

    Args:
        kind: The kind name.
        expand: For a kind whose one entry may stand for several sources: entry -> the entries it stands for
            (each then built by the factory). Must be idempotent on its own output.
    """

    def wrap(factory: SourceFactory) -> SourceFactory:
        _KINDS[kind] = factory
        if expand is not None:
            _EXPANDERS[kind] = expand
        return factory

    return wrap


def expand_sources(data: DataConfig) -> DataConfig:
    """The data config with every multi-source entry replaced by the sources it stands for.

    Raises:
        ConfigError: Duplicate names after expansion, or a source count that ``pseudo`` does not allow.
    """
    out: list[SourceConfig] = []
    for s in data.sources:
        out.extend(_EXPANDERS[s.kind](s, data) if s.kind in _EXPANDERS else [s])
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"data.sources: names {dup} occur twice after expanding imagefolder/list entries")
    check_source_count(data.pseudo, len(out))
    return dataclasses.replace(data, sources=out)


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
    """Build the source that ``cfg`` (an entry of the *expanded* ``data``) describes.

    Raises:
        ValueError: Unknown kind (the message names the config key).
        FileNotFoundError: A missing folder or file.
    """
    if cfg.kind not in _KINDS:
        raise ValueError(f"data.sources[{cfg.name}].kind: unknown kind '{cfg.kind}'; known: {source_kinds()}")
    position = [s.name for s in data.sources].index(cfg.name)
    return _KINDS[cfg.kind](cfg, data, position)


def create_sources(data: DataConfig) -> dict[str, Source]:
    """All configured sources by name, in (expanded) config order."""
    data = expand_sources(data)
    return {s.name: create_source(s, data) for s in data.sources}


# The file kinds register themselves on import (they import this module, so this comes last).
from dsbias.data import filesources, shards  # noqa: E402, F401
