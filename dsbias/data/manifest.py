"""The manifest: one row per sampled image, with its source label, split and native metadata.

Sampling (:func:`build_manifest`): each source's items are visited in a seeded random order (uniform over
the whole source); each is decoded once, and the first ``train + val`` usable ones are kept: the first
``train`` for train, the next ``val`` for val. So the split is disjoint by construction and the same seed
gives the same manifest. Items that fail to decode are skipped and counted per source and reason.

With ``data.pseudo = K`` the single source gives ``K * (train + val)`` usable items, dealt round-robin to
K pseudo-sources (disjoint random splits of one source: Liu & He's memorisation control).

Rows are ordered train then val, and by source within a split. Row ``i`` is ``index = i`` everywhere
downstream (datasets, feature files, probes).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.config import DataConfig, to_dict
from dsbias.data.decode import DecodeError, ImageInfo
from dsbias.data.sources import Source, create_sources
from dsbias.runs import atomic_path, sha256_file, write_json

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
SPLITS = ("train", "val")


class ShortSourceError(RuntimeError):
    """A source has fewer usable images than the config asks for."""


@dataclass
class Manifest:
    """Rows of sampled images (columns as lists) and the summary of how they were drawn.

    Attributes:
        sources: Label names; ``source_id`` indexes this list.
        rows: One dict per image: ``index, split, source, source_id, origin, item, width, height, format, bytes``.
        summary: Requested and obtained counts, skipped counts by reason, seed, data config.
    """

    sources: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def split_indices(self, split: str) -> np.ndarray:
        """Manifest rows of one split, in manifest order. ``[N_split]`` int64."""
        return np.array([r["index"] for r in self.rows if r["split"] == split], dtype=np.int64)

    def labels(self) -> np.ndarray:
        """Source id of every row. ``[N]`` int64."""
        return np.array([r["source_id"] for r in self.rows], dtype=np.int64)

    def save(self, path: str | Path) -> None:
        """Write ``manifest.jsonl`` (rows) and ``manifest.json`` (summary, with the rows' sha256) atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            for r in self.rows:
                f.write(json.dumps(r) + "\n")
        summary = {**self.summary, "sources": self.sources, "rows": len(self.rows),
                   "sha256": sha256_file(path), "format_version": MANIFEST_VERSION}
        self.summary = summary
        write_json(path.with_suffix(".json"), summary)

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest written by :meth:`save`, checking rows against the summary."""
        path = Path(path)
        summary = json.loads(path.with_suffix(".json").read_text())
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if len(rows) != summary["rows"] or any(r["index"] != i for i, r in enumerate(rows)):
            raise ValueError(f"{path}: rows do not match {path.with_suffix('.json')} (edited or truncated?)")
        return cls(sources=list(summary["sources"]), rows=rows, summary=summary)


def _usable(source: Source, order: Iterable[str], need: int, workers: int) -> Iterator[tuple[str, ImageInfo | str]]:
    """Yield ``(item, info)`` for usable items and ``(item, reason)`` for failures, in ``order``, until
    ``need`` usable ones were yielded or the source runs out. Decoding runs on a thread pool in chunks."""

    def probe(item: str) -> tuple[str, ImageInfo | str]:
        try:
            return item, source.read(item)[1]
        except DecodeError as e:
            return item, e.reason

    it = iter(order)
    got = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while got < need:
            chunk = [x for _, x in zip(range(max(16, int((need - got) * 1.1) + 4)), it, strict=False)]
            if not chunk:
                return
            for item, res in pool.map(probe, chunk):
                if got >= need:
                    return
                if isinstance(res, ImageInfo):
                    got += 1
                yield item, res


def build_manifest(data: DataConfig) -> Manifest:
    """Sample every source, split train/val and record native metadata.

    Args:
        data: The data config (sources, per-source counts, seed, pseudo, allow_fewer).

    Returns:
        The manifest (not yet saved).

    Raises:
        ShortSourceError: A source has too few usable images and ``allow_fewer`` is off.
    """
    readers = create_sources(data)
    n_train, n_val = data.per_source.train, data.per_source.val
    k = data.pseudo or 1
    picked: dict[str, list[tuple[str, ImageInfo]]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for name, src in readers.items():
        need = k * (n_train + n_val)
        good, bad = [], Counter()
        for item, res in _usable(src, src.sample_order(data.seed), need, data.num_workers * 2):
            if isinstance(res, ImageInfo):
                good.append((item, res))
            else:
                bad[res] += 1
        skipped[name] = dict(bad)
        if bad:
            logger.warning("source %s: skipped %d undecodable images %s", name, sum(bad.values()), dict(bad))
        if len(good) < need:
            msg = (f"source '{name}': {len(good)} usable images, {need} asked for "
                   f"(data.per_source = {n_train}/{n_val}{f' x {k} pseudo' if k > 1 else ''}; "
                   f"skipped {sum(bad.values())} undecodable)")
            if not data.allow_fewer:
                raise ShortSourceError(msg + "; lower data.per_source or set data.allow_fewer=true")
            logger.warning("%s; data.allow_fewer is on: using all %d", msg, len(good))
        picked[name] = good

    # Labels: the configured sources, or K pseudo-sources cut from the single one.
    if data.pseudo:
        (origin,) = readers
        labels = [f"{origin}-{j}" for j in range(k)]
        items = picked[origin]
        per_label = {lab: [(origin, *items[j + i * k]) for i in range(len(items) // k)]
                     for j, lab in enumerate(labels)}
    else:
        labels = list(readers)
        per_label = {lab: [(lab, *x) for x in picked[lab]] for lab in labels}

    rows: list[dict[str, Any]] = []
    obtained = {}
    for split in SPLITS:
        for sid, lab in enumerate(labels):
            chosen = per_label[lab]
            n_tr = n_train
            if len(chosen) < n_train + n_val:  # allow_fewer: keep the requested train:val proportion
                n_tr = round(len(chosen) * n_train / (n_train + n_val))
            part = chosen[:n_tr] if split == "train" else chosen[n_tr:n_tr + n_val]
            obtained.setdefault(lab, {})[split] = len(part)
            for origin, item, info in part:
                rows.append({"index": len(rows), "split": split, "source": lab, "source_id": sid,
                             "origin": origin, "item": item, "width": info.width, "height": info.height,
                             "format": info.format, "bytes": info.bytes})
    summary = {"seed": data.seed, "requested": {"train": n_train, "val": n_val}, "obtained": obtained,
               "skipped": skipped, "pseudo": data.pseudo, "data": to_dict(data)}
    return Manifest(sources=labels, rows=rows, summary=summary)


def load_or_build_manifest(data: DataConfig, path: str | Path) -> Manifest:
    """The manifest at ``path`` if it was drawn with the same data config, else a new one saved there.

    Raises:
        ValueError: ``path`` holds a manifest drawn with a different data config (names the first key).
    """
    path = Path(path)
    if path.exists() and path.with_suffix(".json").exists():
        manifest = Manifest.load(path)
        old, new = manifest.summary.get("data", {}), to_dict(data)
        if old != new:
            diff = next((k for k in new if old.get(k) != new[k]), "?")
            raise ValueError(f"{path} was drawn with another data config (data.{diff} differs): "
                             "use a new run dir")
        return manifest
    manifest = build_manifest(data)
    manifest.save(path)
    logger.info("manifest: %d rows, %s -> %s", len(manifest), manifest.summary["obtained"], path)
    return manifest
