"""``webdataset`` sources: images inside ``.tar`` shards (img2dataset's output, or ``tools/prepare.py``'s).

A shard holds samples as members that share a key (``000123.jpg`` + ``000123.json``); the image member is
``.jpg/.jpeg/.png/.webp`` (any :data:`IMAGE_EXTENSIONS`), the optional ``.json`` holds metadata. Shards are
indexed once, reading tar headers only (the stdlib :mod:`tarfile`); an item records where its bytes are,
``<shard>::<member>@<offset>:<size>[;<json offset>:<json size>]`` (shard relative to the pattern's folder), so
:meth:`ShardSource.read` is one seek and one read, in any process or DataLoader worker. Distributing work
needs nothing shard-specific: the map-style :class:`MixedDataset` over the manifest is split by the sampler.

A member with a path that would escape (absolute, ``..``) is ignored and counted; a corrupt member fails
alone (a :class:`DecodeError`, counted by the manifest builder); a damaged header ends that shard's index
there, keeping the members before it.
"""

from __future__ import annotations

import glob
import json
import logging
import re
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from PIL import Image

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import IMAGE_EXTENSIONS, DecodeError, ImageInfo, decode_image
from dsbias.data.sources.base import count_bad, native_info, seeded_order
from dsbias.errors import MissingFileError

logger = logging.getLogger(__name__)

_ITEM = re.compile(r"^(?P<shard>.+?)::(?P<member>.+)@(?P<off>\d+):(?P<size>\d+)(?:;(?P<joff>\d+):(?P<jsize>\d+))?$")
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_ALTS = re.compile(r"\{([^{}]*,[^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """Expand ``{000..009}`` (zero-padded like the left bound) and ``{a,b}`` in ``pattern``, in order."""
    m = _RANGE.search(pattern)
    if m:
        lo, hi = m.group(1), m.group(2)
        return [x for i in range(int(lo), int(hi) + 1)
                for x in expand_braces(pattern[:m.start()] + str(i).zfill(len(lo)) + pattern[m.end():])]
    m = _ALTS.search(pattern)
    if m:
        return [x for alt in m.group(1).split(",")
                for x in expand_braces(pattern[:m.start()] + alt + pattern[m.end():])]
    return [pattern]


def pattern_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before any brace or glob: shards are named relative to it."""
    parts = Path(pattern).expanduser().parts
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "{*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def find_shards(pattern: str) -> list[Path]:
    """The shard files ``pattern`` names (braces, then globs), sorted.

    Raises:
        MissingFileError: Nothing matches, or a brace-listed shard is missing (names it).
    """
    shards: set[str] = set()
    for p in expand_braces(str(Path(pattern).expanduser())):
        if any(c in p for c in "*?["):
            shards.update(glob.glob(p))
        elif Path(p).is_file():
            shards.add(p)
        else:
            raise MissingFileError(f"shard {p} (from pattern {pattern}) does not exist (fix the pattern's range)")
    if not shards:
        raise MissingFileError(f"no shards match {pattern} (fix the path)")
    return sorted(Path(s) for s in shards)


def _split_key(name: str) -> tuple[str, str]:
    """webdataset's convention: the key is the path up to the first dot of the file name; the rest is the ext."""
    p = PurePosixPath(name)
    stem, _, ext = p.name.partition(".")
    return str(p.parent / stem), "." + ext.lower()


def index_shard(path: Path, rel: str) -> tuple[list[str], Counter]:
    """Items of one shard (one per image member) and counts of what was ignored.

    Reads tar headers only (tarfile seeks over member data in an uncompressed tar).
    """
    images: dict[str, tuple[str, int, int]] = {}
    metas: dict[str, tuple[int, int]] = {}
    ignored: Counter = Counter()
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tf:
            while True:
                try:
                    m = tf.next()
                except tarfile.TarError:
                    ignored["corrupt_header"] += 1  # the rest of the shard is unreadable; keep what came before
                    break
                if m is None:
                    break
                if not m.isfile():
                    continue
                pure = PurePosixPath(m.name)
                if pure.is_absolute() or ".." in pure.parts:
                    ignored["escaping_path"] += 1
                    continue
                key, ext = _split_key(m.name)
                if ext == ".json":
                    metas[key] = (m.offset_data, m.size)
                elif ext.endswith(IMAGE_EXTENSIONS) and ext.count(".") == 1:
                    images[key] = (m.name, m.offset_data, m.size)
            # tarfile ends quietly at a damaged header past the first: anything but zero padding after the
            # point where it stopped means the rest of the shard was lost.
            f.seek(tf.offset)
            if not ignored["corrupt_header"] and f.read(1 << 20).strip(b"\0"):
                ignored["corrupt_header"] += 1
    except (tarfile.TarError, OSError) as e:
        logger.warning("shard %s: unreadable (%s); skipped", path, e)
        ignored["unreadable_shard"] += 1
        return [], ignored
    items = []
    for key, (name, off, size) in images.items():
        item = f"{rel}::{name}@{off}:{size}"
        if key in metas:
            item += ";{}:{}".format(*metas[key])
        items.append(item)
    return items, ignored


def parse_item(item: str) -> tuple[str, str, int, int, tuple[int, int] | None]:
    """``(shard, member, offset, size, (json offset, json size) or None)`` of a shard item."""
    m = _ITEM.match(item)
    if m is None:
        raise ValueError(f"not a shard item (expected <shard>::<member>@<offset>:<size>): {item!r}")
    meta = (int(m["joff"]), int(m["jsize"])) if m["joff"] else None
    return m["shard"], m["member"], int(m["off"]), int(m["size"]), meta


def _read_at(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise DecodeError("truncated", f"member ends after {len(data)} of {size} bytes")
    return data


class ShardSource:
    """Every image member of the shards a pattern names."""

    def __init__(self, name: str, pattern: str, max_pixels: int, workers: int = 8) -> None:
        self.name = name
        self.pattern = pattern
        self.base = pattern_base(pattern)
        self.max_pixels = max_pixels
        self.workers = workers
        self.ignored: Counter = Counter()

    def list_items(self) -> list[str]:
        """Index every shard (headers only, a thread pool over shards); items sorted by shard then member."""
        shards = find_shards(self.pattern)
        rels = [str(s.relative_to(self.base)) if s.is_relative_to(self.base) else str(s) for s in shards]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(index_shard, shards, rels))
        items = []
        for (its, ignored), shard in zip(results, shards, strict=True):
            items.extend(sorted(its))
            if ignored:
                logger.warning("source %s: shard %s: ignored %s", self.name, shard, dict(ignored))
            self.ignored.update(ignored)
        if not items:
            raise MissingFileError(f"data.sources[{self.name}].path: no image members in {len(shards)} shards of "
                                   f"{self.pattern} (images are .jpg/.png/.webp members)")
        return items

    def sample_order(self, seed: int) -> list[str]:
        return seeded_order(self.list_items(), seed, self.name)

    def read_member(self, item: str) -> tuple[bytes, dict | None]:
        """The member's bytes and its parsed ``.json`` metadata (None if it has none or it is unreadable: an
        unreadable one, not JSON or not an object, is counted as ``bad_sidecar``)."""
        shard, member, off, size, meta = parse_item(item)
        try:
            with open(self.base / shard, "rb") as f:
                data = _read_at(f, off, size)
                meta_obj = None
                if meta is not None:
                    try:
                        meta_obj = json.loads(_read_at(f, *meta))
                    except (DecodeError, ValueError, RecursionError):
                        meta_obj = None
                    if not isinstance(meta_obj, dict):
                        count_bad(self.ignored, "bad_sidecar")
                        logger.debug("source %s: %s: unreadable .json metadata, ignored", self.name, item)
        except OSError as e:
            raise DecodeError("missing", f"{shard}: {e.strerror}") from None
        return data, meta_obj if isinstance(meta_obj, dict) else None

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        data, meta = self.read_member(item)
        img, info = decode_image(data, self.max_pixels)
        return img, native_info(info, meta, self.ignored)

    def read_bytes(self, item: str) -> bytes:
        """The member's bytes as stored (for ``tools/prepare.py``)."""
        return self.read_member(item)[0]


def item_path(item: str) -> str:
    """``<shard>/<member>``: the path ``data.group`` regex/dir look at."""
    shard, member, *_ = parse_item(item)
    return f"{shard}/{member}"


def key_value(source: ShardSource, item: str, key: str) -> object:
    """The value of ``key`` in the sample's ``.json`` (``data.group={key: NAME}``).

    Raises:
        KeyError: The sample has no ``.json`` or no such key.
    """
    meta = source.read_member(item)[1]
    if meta is None or key not in meta:
        raise KeyError(f"{item}: no '{key}' in its .json metadata" if meta is not None else f"{item}: no .json")
    return meta[key]


def create(cfg: SourceConfig, data: DataConfig) -> ShardSource:
    return ShardSource(cfg.name, cfg.path or "", data.max_pixels)
