"""The mixed dataset: manifest rows of one split -> ``(image(s), source_id, index)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dsbias.anatomy.resize import cap_short_side
from dsbias.data.config import DataConfig
from dsbias.data.decode import DecodeError
from dsbias.data.manifest import Manifest
from dsbias.data.sources.base import Source
from dsbias.data.sources.registry import create_sources


class MixedDataset(Dataset):
    """Images of one split of a manifest, each with its source label and manifest row.

    ``__getitem__(i)`` returns ``(views, source_id, index)``: ``views`` is whatever ``transform`` makes of the
    RGB image (a tensor, or a list of tensors for multi-view methods), ``source_id`` an int64 label and
    ``index`` the manifest row, carried end to end so features are written by row, whatever the sampler.

    Every image that reaches a network is read here, so this is where the load-time cap ``data.max_short_side``
    applies (:func:`dsbias.anatomy.resize.cap_short_side`, the kernel of ``tools/prepare.py``): once, before
    the transform. It has no default, so no caller can forget it.
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
        self.rows = [manifest.rows[i] for i in manifest.split_indices(split)]
        self.index = np.array([r["index"] for r in self.rows], dtype=np.int64)
        self.labels = np.array([r["source_id"] for r in self.rows], dtype=np.int64)
        self.sources = manifest.sources
        self.split = split
        self.transform = transform
        self.readers = readers
        self.max_short_side = max_short_side
        self.cache: dict[int, Any] | None = {} if cache else None  # row position -> decoded, capped image

    @classmethod
    def from_config(cls, manifest: Manifest, split: str, transform: Callable, data: DataConfig) -> MixedDataset:
        """Build the readers (and the load-time cap) from the data config the manifest was drawn with."""
        return cls(manifest, split, transform, create_sources(data), max_short_side=data.max_short_side,
                   cache=data.cache_decoded)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        row = self.rows[i]
        img = None if self.cache is None else self.cache.get(i)
        if img is None:
            img = self.decode_row(row)
            if self.cache is not None:
                self.cache[i] = img
        return self.transform(img), torch.tensor(row["source_id"]), torch.tensor(row["index"])

    def decode_row(self, row: dict[str, Any]) -> Any:
        """The row's RGB image, decoded and capped (``data.max_short_side``)."""
        try:
            img, _ = self.readers[row["origin"]].read(row["item"])
        except DecodeError as e:
            # It decoded when the manifest was drawn: the file changed since. Never substitute an image.
            raise RuntimeError(f"{row['origin']}: {row['item']} no longer decodes ({e}); "
                               "rebuild the manifest") from None
        return cap_short_side(img, self.max_short_side)
