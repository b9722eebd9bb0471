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
import logging
import os
import threading
from collections import Counter
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
logger = logging.getLogger(__name__)

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


def list_images(root: Path, ignored: Counter | None = None) -> list[str]:
    """Every image file under ``root`` (recursively, symlinks followed) as a sorted relative path.

    Each real directory is listed once and each real file once, whatever the symlinks: a directory is known by
    its ``(st_dev, st_ino)``, so a link back to an ancestor (``ln -s . loop``) or a second link to a folder
    already listed is skipped, and so is a second path to a file already listed (a file symlink, a hard link).
    ``os.walk(followlinks=True)`` would recurse into a loop until the path is too long (two loops: without end).

    Args:
        root: The folder.
        ignored: Counts of what was skipped, updated in place: ``symlink_loop`` (a link to an ancestor),
            ``linked_twice`` (a directory or file reached again by another path), ``dangling_link``,
            ``unreadable_dir``.

    Raises:
        OSError: ``root`` itself cannot be read.
    """
    skipped: Counter = Counter()
    files: list[str] = []
    seen_files: set[tuple[int, int]] = set()
    st = os.stat(root)
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack: list[tuple[str, str, frozenset, int]] = [(str(root), "", frozenset(seen_dirs), st.st_dev)]
    while stack:
        path, rel, ancestors, dev = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)  # which path of a file reached twice wins: stable
        except OSError:
            skipped["unreadable_dir"] += 1
            continue
        subdirs = []
        for e in entries:
            try:
                link = e.is_symlink()
                if e.is_dir():  # follows a link
                    s = e.stat()
                    key = (s.st_dev, s.st_ino)
                    if key in seen_dirs:
                        skipped["symlink_loop" if key in ancestors else "linked_twice"] += 1
                        continue
                    seen_dirs.add(key)
                    subdirs.append((e.path, os.path.join(rel, e.name), ancestors | {key}, s.st_dev))
                elif not e.name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                elif not e.is_file():
                    skipped["dangling_link" if link else "not_a_file"] += 1
                else:
                    # inode() of a plain entry comes from readdir (no stat); a link is resolved to its target.
                    key = (e.stat().st_dev, e.stat().st_ino) if link else (dev, e.inode())
                    if key in seen_files:
                        skipped["linked_twice"] += 1
                        continue
                    seen_files.add(key)
                    files.append(os.path.join(rel, e.name))
            except OSError:  # vanished while listed, or a link we may not follow
                skipped["unreadable_entry"] += 1
        stack.extend(reversed(subdirs))  # depth first, in name order
    if skipped:
        logger.warning("%s: skipped %s while listing (each folder and file is listed once)", root, dict(skipped))
        if ignored is not None:
            ignored.update(skipped)
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


# The largest native side a sidecar may claim (a gigapixel panorama is ~100k px wide).
MAX_NATIVE_SIDE = 1 << 20
# Formats a sidecar may name: PIL's (JPEG, PNG, WEBP...), any case, plus the usual file-extension spellings.
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_count_lock = threading.Lock()  # sources are read from a thread pool while the manifest is drawn


def _positive_int(value: object, top: int) -> int | None:
    """``value`` as an int in ``[1, top]`` (an int, or a float with no fraction: JSON writers differ), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if 1 <= value <= top else None


def _known_format(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = FORMAT_ALIASES.get(value.upper(), value.upper())
    return name if name in Image.registered_extensions().values() else None


def count_bad(counts: Counter | None, reason: str) -> None:
    """``counts[reason] += 1`` under a lock (sources are read from several threads)."""
    if counts is not None:
        with _count_lock:
            counts[reason] += 1


def native_info(info: ImageInfo, meta: dict | None, counts: Counter | None = None) -> ImageInfo:
    """The stored image's info, with native size/format/bytes from the metadata when it records them
    (``original_width``/``original_height`` as img2dataset and ``tools/prepare.py`` write them, in a shard's
    ``.json`` or in parquet columns; a null value counts as absent).

    The metadata is checked, never trusted: sizes must be positive ints (at most :data:`MAX_NATIVE_SIDE`),
    ``original_bytes`` a positive int, ``original_format`` a format PIL knows. Metadata that fails is ignored
    for this image (its decoded info is used) and counted as ``bad_sidecar`` in ``counts``; it never stops a run.
    """
    if not meta or meta.get("original_width") is None or meta.get("original_height") is None:
        return info
    w = _positive_int(meta["original_width"], MAX_NATIVE_SIDE)
    h = _positive_int(meta["original_height"], MAX_NATIVE_SIDE)
    fmt, size = meta.get("original_format"), meta.get("original_bytes")
    fmt_ok = info.format if fmt is None else _known_format(fmt)
    size_ok = info.bytes if size is None else _positive_int(size, 1 << 50)
    if w is None or h is None or fmt_ok is None or size_ok is None:
        count_bad(counts, "bad_sidecar")
        logger.debug("ignored native metadata %s (sizes: positive ints; format: one PIL knows)", meta)
        return info
    return ImageInfo(width=w, height=h, format=str(fmt_ok), bytes=size_ok, sha1=info.sha1, mode=info.mode)
