"""``tools/prepare.py``: write sources to webdataset (or parquet) shards the way Liu & He preprocessed them.

Every usable image of each source (in its seeded order, so shards are shuffled) becomes ``<key>.<ext>`` +
``<key>.json`` in ``<out>/<source>/<source>-NNNNN.tar``. The paper's policy is the default: an image whose
shorter side exceeds 500 px is resized to 500 (bicubic) and saved as PNG; any other image keeps its original
bytes. The ``.json`` records the native ``original_width``, ``original_height``, ``original_format``,
``original_bytes`` and ``original_sha1`` (read back by the ``webdataset`` kind as the manifest's native size).
With ``format="parquet"`` each image is a row of ``<out>/<source>/<source>-NNNNN.parquet`` with the same fields
as columns (:mod:`dsbias.data.parquet_writer`), read back by the ``parquet`` kind.

Controls for the low-level "fingerprint" critique (notes §9, §10): ``--reencode jpeg|png|webp`` writes every
image with one codec and quality; ``--size N`` resizes every image to shorter side N (up or down, one
kernel); ``--max-side N`` caps the longer side. ``<out>/data.yaml`` is a data config that reads the shards.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from dsbias.anatomy.resize import RESAMPLE, short_side_size
from dsbias.data.config import DataConfig
from dsbias.data.decode import DecodeError, decode_image
from dsbias.data.parquet_writer import ParquetShardWriter
from dsbias.data.sources.registry import create_sources, expand_sources
from dsbias.log import progress
from dsbias.runs import write_json, write_text
from dsbias.typedconfig import ConfigError

logger = logging.getLogger(__name__)

_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
CODECS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


@dataclass
class PrepareOptions:
    """How images are written.

    Attributes:
        short_side: Shorter side resized to this when larger (the paper's 500); 0 disables.
        size: Every image resized to this shorter side, up or down (overrides ``short_side``); 0 disables.
        max_side: Longer side capped at this (after the above); 0 disables.
        reencode: ``jpeg``, ``png`` or ``webp``: re-encode every image with that codec; None keeps the original
            bytes of images that were not resized (resized ones are PNG, as in the paper).
        quality: JPEG/WebP quality of a re-encode.
        shard_size: Images per shard.
        limit: Images per source (0: all; a toy source needs a limit).
        format: ``tar`` (webdataset shards) or ``parquet`` (the Hugging Face layout; needs the parquet extra).
        row_group_size: Parquet only: rows per row group (reading one image reads its row group's images).
    """

    short_side: int = 500
    size: int = 0
    max_side: int = 0
    reencode: str | None = None
    quality: int = 90
    shard_size: int = 1000
    limit: int = 0
    format: Literal["tar", "parquet"] = "tar"
    row_group_size: int = 10


def target_size(w: int, h: int, opts: PrepareOptions) -> tuple[int, int] | None:
    """The ``(width, height)`` to resize to, or None to keep the image's size.

    The shorter-side rule is the one of the load-time cap ``data.max_short_side`` and of Zeng et al.'s
    ``transforms.Resize(500)`` (:func:`dsbias.anatomy.resize.short_side_size`: the longer side truncated), so
    shards prepared here hold the pixels a run with the cap would read.
    """
    size = (w, h)
    if opts.size:
        size = short_side_size(w, h, opts.size)
    elif opts.short_side and min(w, h) > opts.short_side:
        size = short_side_size(w, h, opts.short_side)
    if opts.max_side and max(size) > opts.max_side:
        scale = opts.max_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return None if size == (w, h) else size


def convert(raw: bytes, opts: PrepareOptions, max_pixels: int) -> tuple[bytes, str, dict[str, Any]]:
    """One image's output bytes, extension and metadata. Raises :class:`DecodeError` for a bad image."""
    img, info = decode_image(raw, max_pixels)
    meta = {"original_width": info.width, "original_height": info.height, "original_format": info.format,
            "original_bytes": info.bytes, "original_sha1": info.sha1, "original_mode": info.mode}
    size = target_size(info.width, info.height, opts)
    if size is None and opts.reencode is None:
        return raw, _EXT.get(info.format, "img"), {**meta, "width": info.width, "height": info.height}
    if size is not None:
        img = img.resize(size, RESAMPLE)  # the load-time cap's kernel (dsbias.anatomy.resize)
    codec = CODECS[opts.reencode or "png"]
    buf = io.BytesIO()
    img.save(buf, codec, **({"quality": opts.quality} if codec in ("JPEG", "WEBP") else {}))
    return buf.getvalue(), _EXT[codec], {**meta, "width": img.width, "height": img.height, "format": codec}


class ShardWriter:
    """Samples into ``<folder>/<prefix>-NNNNN.tar``, ``shard_size`` per shard; each shard is written under a
    temporary name and renamed when complete, so a crash never leaves a half shard under a final name."""

    def __init__(self, folder: Path, prefix: str, shard_size: int) -> None:
        self.folder, self.prefix, self.shard_size = folder, prefix, shard_size
        self.shards: list[Path] = []
        self.count = 0
        self._tf: tarfile.TarFile | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, body: bytes, ext: str, meta: dict[str, Any]) -> None:
        """Add one image: ``<key>.<ext>`` and its metadata as ``<key>.json``."""
        self.write({ext: body, "json": json.dumps(meta).encode()})

    def write(self, members: dict[str, bytes]) -> None:
        """Add one sample: ``{ext: bytes}`` under the next key."""
        if self.count % self.shard_size == 0:
            self._finish()
            self.shards.append(self.folder / f"{self.prefix}-{len(self.shards):05d}.tar")
            self._tf = tarfile.open(self._tmp(self.shards[-1]), "w")  # noqa: SIM115 (closed in _finish)
        for ext, data in members.items():
            ti = tarfile.TarInfo(f"{self.count:09d}.{ext}")
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644  # fixed mtime: same input, same bytes
            self._tf.addfile(ti, io.BytesIO(data))
        self.count += 1

    @staticmethod
    def _tmp(path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two writers never share a temporary file

    def _finish(self) -> None:
        if self._tf is not None:
            self._tf.close()
            os.replace(self._tmp(self.shards[-1]), self.shards[-1])
            self._tf = None

    def close(self) -> None:
        """Complete the last shard."""
        self._finish()


def prepare_source(source: Any, out: Path, opts: PrepareOptions, data: DataConfig, kind: str) -> dict[str, Any]:
    """Write one source's shards; returns its counts."""
    if not hasattr(source, "read_bytes"):
        raise ConfigError(f"source '{source.name}': kind {kind} cannot give stored bytes")
    if kind == "toy" and not opts.limit:
        raise ConfigError(f"source '{source.name}' is a toy source (endless): give --limit")
    order = source.sample_order(data.seed)

    def work(item: str) -> tuple[str, tuple[bytes, str, dict] | str]:
        try:
            return item, convert(source.read_bytes(item), opts, data.max_pixels)
        except DecodeError as e:
            return item, e.reason
        except OSError:
            return item, "missing"

    skipped: dict[str, int] = {}
    if opts.format == "parquet":
        writer = ParquetShardWriter(out / source.name, source.name, opts.shard_size, opts.row_group_size)
    else:
        writer = ShardWriter(out / source.name, source.name, opts.shard_size)
    bar = progress(total=opts.limit or None, desc=source.name, unit="img", leave=False)
    with ThreadPoolExecutor(max_workers=max(1, data.loader_workers() * 2)) as pool:
        it = iter(order)
        while not opts.limit or writer.count < opts.limit:
            chunk = [x for _, x in zip(range(256), it, strict=False)]
            if not chunk:
                break
            for item, res in pool.map(work, chunk):
                if isinstance(res, str):
                    skipped[res] = skipped.get(res, 0) + 1
                elif not opts.limit or writer.count < opts.limit:
                    body, ext, meta = res
                    writer.add(body, ext, {**meta, "source": source.name, "item": item})
                    bar.update()
    writer.close()
    bar.close()
    shards = writer.shards
    folder = (out / source.name).resolve()  # data.yaml must work from any directory
    written = writer.count
    if opts.format == "parquet":
        pattern = f"{folder}/{source.name}-*.parquet" if shards else None
    else:
        pattern = f"{folder}/{source.name}-{{00000..{len(shards) - 1:05d}}}.tar" if shards else None
    return {"written": written, "skipped": skipped, "shards": len(shards), "pattern": pattern}


def prepare(data: DataConfig, out: str | Path, opts: PrepareOptions) -> dict[str, Any]:
    """Write every source of ``data`` to shards under ``out``; also ``data.yaml`` and ``prepare.json``.

    Returns:
        Per-source counts and the shard pattern.
    """
    out = Path(out)
    kinds = {s.name: s.kind for s in expand_sources(data).sources}
    result = {name: prepare_source(src, out, opts, data, kinds[name]) for name, src in create_sources(data).items()}
    kind = "parquet" if opts.format == "parquet" else "webdataset"
    sources = [{"name": n, "kind": kind, "path": r["pattern"]} for n, r in result.items() if r["pattern"]]
    snippet = {"sources": sources, "per_source": {"train": data.per_source.train, "val": data.per_source.val},
               "image_size": data.image_size, "seed": data.seed}
    write_text(out / "data.yaml", yaml.safe_dump(snippet, sort_keys=False))
    write_json(out / "prepare.json", {"options": vars(opts), "sources": result})
    return result


def summary_text(result: dict[str, Any], out: str | Path) -> str:
    """One screen: per source, images written, shards, skipped."""
    lines = [f"{'source':<16}{'written':>9}{'shards':>8}  skipped"]
    for name, r in result.items():
        lines.append(f"{name:<16}{r['written']:>9}{r['shards']:>8}  {r['skipped'] or '-'}")
    lines.append(f"shards under {out}/; to read them: data={Path(out) / 'data.yaml'}")
    return "\n".join(lines)
