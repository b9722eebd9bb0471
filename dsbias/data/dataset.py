"""The mixed dataset: manifest rows of one split -> ``(image(s), source_id, index)``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dsbias.anatomy.resize import cap_short_side
from dsbias.data.config import DataConfig
from dsbias.data.decode import DecodeError
from dsbias.data.manifest import Manifest
from dsbias.data.sources.base import Source
from dsbias.data.sources.registry import create_sources
from dsbias.errors import UserError
from dsbias.log import progress


class DataChangedError(UserError, RuntimeError):
    """An image of the manifest no longer decodes: its file changed after the manifest was drawn."""


class MixedDataset(Dataset):
    """Images of one split of a manifest, each with its source label and manifest row.

    ``__getitem__(i)`` returns ``(views, source_id, index)``: ``views`` is whatever ``transform`` makes of the
    RGB image (a tensor, or a list of tensors for multi-view methods), ``source_id`` an int64 label and
    ``index`` the manifest row, carried end to end so features are written by row, whatever the sampler.

    Every image that reaches a network is read here, so this is where the load-time cap ``data.max_short_side``
    applies (:func:`dsbias.anatomy.resize.cap_short_side`, the kernel of ``tools/prepare.py``): once, before
    the transform. It has no default, so no caller can forget it.

    Rows are kept as numpy arrays (origins as ids, items as one UTF-8 buffer with offsets), not as the
    manifest's Python dicts: a DataLoader worker forked from this process touches every Python object it reads
    (reference counts), which copies its memory page by page, so N workers x millions of dicts would each grow
    to a copy of the manifest; arrays are a few objects whose pages stay shared.
    """

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        transform: Callable[[Any], Any],
        readers: dict[str, Source],
        *,
        max_short_side: int,
        cache: bool = False,
    ) -> None:
        rows = [manifest.rows[i] for i in manifest.split_indices(split)]
        self.index = np.array([r["index"] for r in rows], dtype=np.int64)  # [N] manifest rows
        self.labels = np.array([r["source_id"] for r in rows], dtype=np.int64)  # [N] source ids
        self.origins = sorted({r["origin"] for r in rows})
        origin_id = {o: k for k, o in enumerate(self.origins)}
        self.origin_ids = np.array([origin_id[r["origin"]] for r in rows], dtype=np.int32)  # [N]
        encoded = [str(r["item"]).encode() for r in rows]
        self.item_offsets = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)  # [N + 1]
        self.item_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)  # every item, UTF-8, back to back
        self.sources = manifest.sources
        self.split = split
        self.transform = transform
        self.readers = readers
        self.max_short_side = max_short_side
        self.cache: list[Any] | None = [None] * len(self.index) if cache else None  # row position -> image

    @classmethod
    def from_config(cls, manifest: Manifest, split: str, transform: Callable, data: DataConfig,
                    cache: bool | None = None) -> MixedDataset:
        """Build the readers (and the load-time cap) from the data config the manifest was drawn with; with
        ``data.cache_decoded`` (or ``cache``: ``False`` for a single pass over the split, where keeping the
        images would only cost memory), decode every image of the split now (:meth:`fill_cache`)."""
        cache = data.cache_decoded if cache is None else cache
        ds = cls(manifest, split, transform, create_sources(data), max_short_side=data.max_short_side, cache=cache)
        if cache:
            ds.fill_cache(data.loader_workers())
        return ds

    def fill_cache(self, workers: int) -> None:
        """Decode (and cap) every image once, into this process's memory.

        Done here, before a training loader forks its workers, so that they all read these images (the pages
        are shared copy-on-write) instead of each decoding and keeping its own copy of what it happens to
        read. The decoding itself is spread over ``workers`` DataLoader processes (each with its own readers,
        as in training; 0: in this process).
        """
        assert self.cache is not None, "fill_cache: made without cache=True"
        todo = [i for i, img in enumerate(self.cache) if img is None]
        loader = DataLoader(_Decode(self), batch_size=64, sampler=todo, num_workers=workers,
                            collate_fn=list, prefetch_factor=4 if workers else None)
        for batch in progress(loader, desc=f"decode {self.split} (data.cache_decoded)", unit="batch"):
            for i, img in batch:
                self.cache[i] = img

    def with_transform(self, transform: Callable[[Any], Any]) -> MixedDataset:
        """The same rows (and decoded images, when cached) under another transform, e.g. the eval view."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        img = None if self.cache is None else self.cache[i]
        if img is None:
            img = self.decode_row(self.row(i))
            if self.cache is not None:
                self.cache[i] = img
        return self.transform(img), torch.tensor(self.labels[i]), torch.tensor(self.index[i])

    def decode_row(self, row: dict[str, Any]) -> Any:
        """The row's RGB image, decoded and capped (``data.max_short_side``)."""
        origin, item = row["origin"], row["item"]
        try:
            img, _ = self.readers[origin].read(item)
        except DecodeError as e:
            # It decoded when the manifest was drawn: the file changed since. Never substitute an image.
            raise DataChangedError(f"data.sources[{origin}]: {item} no longer decodes ({e}) (the "
                                   "file changed since the manifest was drawn: restore it, or draw the manifest "
                                   "again in a new run dir)") from None
        return cap_short_side(img, self.max_short_side)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as the manifest has it (its split's fields), made on demand."""
        source_id = int(self.labels[i])
        return {"index": int(self.index[i]), "source_id": source_id, "source": self.sources[source_id],
                "origin": self.origins[self.origin_ids[i]], "item": self.item(i), "split": self.split}

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (for inspection and tests; the loader reads the arrays)."""
        return [self.row(i) for i in range(len(self))]

    def item(self, i: int) -> str:
        """Row ``i``'s item (a path or key inside its source)."""
        return self.item_bytes[self.item_offsets[i]:self.item_offsets[i + 1]].tobytes().decode()


class _Decode(Dataset):
    """``(position, decoded image)`` of a :class:`MixedDataset`'s rows, for :meth:`MixedDataset.fill_cache`."""

    def __init__(self, ds: MixedDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return i, self.ds.decode_row(self.ds.row(i))
