"""What every source kind provides, and the helpers the file kinds share.

A source lists its items in a seeded random order (:meth:`Source.sample_order`) and reads one item into an
RGB image plus its native :class:`~dsbias.data.decode.ImageInfo` (:meth:`Source.read`), raising
:class:`~dsbias.data.decode.DecodeError` for an item that cannot be used. Items are strings (a path relative
to the source's root, ``shard::member@offset:size``, a generator id); the manifest stores them, so a manifest
stays valid when the data moves and the config's paths follow. A source with an official split also has
``split_order(seed, split)`` (``None`` if absent). How kinds are registered: :mod:`.registry`.

A kind that needs an optional dependency (``pyarrow``, ``datasets``) says so in :attr:`SourceKind.requires`;
the registry checks it at config load and the kind imports it through :func:`import_extra`, so a missing extra
is one line naming the ``pip install`` that brings it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import IMAGE_EXTENSIONS, ImageInfo
from dsbias.errors import UserError
from dsbias.seeds import stable_seed
from dsbias.typedconfig import ConfigError

# Optional dependencies of some kinds -> the extra of pyproject.toml that installs them.
EXTRAS = {"pyarrow": "parquet", "datasets": "hf"}


class Source(Protocol):
    """What every source kind provides."""

    name: str

    def sample_order(self, seed: int) -> Iterable[str]:
        """All items, in a random order that depends only on ``seed`` (uniform over the whole source)."""
        ...

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        """Decode one item. Raises :class:`DecodeError` when it cannot be used."""
        ...


@dataclass(frozen=True)
class SourceKind:
    """One registered kind of source.

    Attributes:
        create: ``(entry, data) -> Source`` for an entry of the *expanded* data config.
        expand: For a kind whose one entry may stand for several sources: entry -> the entries it stands for
            (each then built by ``create``). Must be idempotent on its own output.
        needs_path: The entry must give ``path``.
        item_path: item -> the path that ``data.group`` regex/dir look at (default: the item itself).
        column: ``(source, item, name) -> value`` of a per-item column (``data.group={column: NAME}``), for
            tabular kinds.
        key: ``(source, item, name) -> value`` of a key of the item's metadata (``data.group={key: NAME}``).
        requires: entry -> the optional modules it needs (keys of :data:`EXTRAS`); checked at config load.
    """

    create: Callable[[SourceConfig, DataConfig], Source]
    expand: Callable[[SourceConfig, DataConfig], list[SourceConfig]] | None = None
    needs_path: bool = True
    item_path: Callable[[str], str] | None = None
    column: Callable[[Source, str, str], object] | None = None
    key: Callable[[Source, str, str], object] | None = None
    requires: Callable[[SourceConfig], tuple[str, ...]] | None = None


def missing_extra(module: str) -> str | None:
    """``pip install -e '.[extra]'`` for an optional ``module`` that is not installed, else None."""
    try:
        if importlib.util.find_spec(module) is not None:
            return None
    except (ImportError, ValueError):  # a parent package missing, or a broken entry in sys.modules
        pass
    return f"pip install -e '.[{EXTRAS[module.split('.')[0]]}]'"


def import_extra(module: str, what: str):
    """Import an optional ``module`` (``pyarrow.parquet``, ``datasets``) for ``what`` needs it.

    Raises:
        UserError: It is not installed; the message names the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UserError(f"{what} needs {top}, which is not installed: pip install -e '.[{EXTRAS[top]}]'") from None


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


def one_per_name(cfg: SourceConfig, found: list[str], what: str) -> list[SourceConfig]:
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


def native_info(info: ImageInfo, meta: dict | None) -> ImageInfo:
    """The stored image's info, with native size/format/bytes from the metadata when it records them
    (``original_width``/``original_height`` as img2dataset and ``tools/prepare.py`` write them, in a shard's
    ``.json`` or in parquet columns; a null value counts as absent)."""
    if not meta or meta.get("original_width") is None or meta.get("original_height") is None:
        return info
    fmt, size = meta.get("original_format"), meta.get("original_bytes")
    return ImageInfo(width=int(meta["original_width"]), height=int(meta["original_height"]),
                     format=str(info.format if fmt is None else fmt),
                     bytes=int(info.bytes if size is None else size), sha1=info.sha1, mode=info.mode)
