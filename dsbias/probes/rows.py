"""Standardised feature rows for the linear probe: in RAM (a tensor) or streamed block by block from the feature
file (:class:`StreamedRows`), so a probe of millions of rows holds one block, not the matrix.

Both give the same standardisation (MAE's ``BatchNorm1d(affine=False)``: train mean and biased std + eps).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from dsbias.features.store import read_rows, row_blocks

BN_EPS = 1e-6  # MAE's BatchNorm1d(eps=1e-6)
CHUNK = 65536  # rows per block read from a feature file: 192 MiB of float32 at d=768


@dataclass
class Standardizer:
    """Train-set mean and std ``[D]`` (float64 accumulation, BN's biased variance + eps)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        s = torch.zeros(x.shape[1], dtype=torch.float64), torch.zeros(x.shape[1], dtype=torch.float64)
        for _, block in row_blocks(x, CHUNK, native=True):
            c = torch.from_numpy(block).double()  # torch converts float16 ~5x faster than numpy
            s = s[0] + c.sum(0), s[1] + (c * c).sum(0)
        mean = s[0].numpy() / x.shape[0]
        var = np.maximum(s[1].numpy() / x.shape[0] - mean * mean, 0.0)
        return cls(mean=mean, std=np.sqrt(var + BN_EPS))

    def transform(self, block: np.ndarray, device: torch.device) -> torch.Tensor:
        """Standardised float32 tensor of a freshly read ``block [B, D]`` (float32 or float16; reused in place)."""
        mean, std = torch.from_numpy(self.mean).float(), torch.from_numpy(self.std).float()
        return torch.from_numpy(block).float().sub_(mean).div_(std).to(device)

    def apply(self, x: np.ndarray, device: torch.device) -> torch.Tensor:
        """Standardised float32 tensor ``[N, D]`` on ``device``, built block by block from a (memmapped) file."""
        out = torch.empty(x.shape, dtype=torch.float32, device=device)
        for start, block in row_blocks(x, CHUNK, native=True):
            out[start:start + block.shape[0]] = self.transform(block, device)
        return out


@dataclass
class StreamedRows:
    """A subset of standardised rows of ``features [N, D]``, read from the file on every pass.

    Attributes:
        features: The (memory-mapped) feature matrix, any float dtype.
        std: Its train standardiser.
        device: Where each block goes.
        rows: Sorted row ids of the subset (``None``: all rows).
        block: Rows read per block.
    """

    features: np.ndarray
    std: Standardizer
    device: torch.device
    rows: np.ndarray | None = None
    block: int = CHUNK

    @property
    def shape(self) -> tuple[int, int]:
        n = self.features.shape[0] if self.rows is None else len(self.rows)
        return n, int(self.features.shape[1])

    def subset(self, positions: np.ndarray | torch.Tensor) -> StreamedRows:
        """The rows at sorted ``positions`` of this subset (as ``x[positions]`` of a tensor)."""
        positions = np.asarray(positions.cpu() if isinstance(positions, torch.Tensor) else positions)
        base = np.arange(self.features.shape[0]) if self.rows is None else self.rows
        return StreamedRows(self.features, self.std, self.device, base[positions], self.block)

    def blocks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """``(position of the first row, standardised rows [B, D])`` over the subset, in order."""
        done = 0
        for lo in range(0, self.features.shape[0], self.block):
            hi = min(lo + self.block, self.features.shape[0])
            if self.rows is None:
                take = None
            else:  # the subset's rows inside [lo, hi): a contiguous run of positions, rows being sorted
                a, b = np.searchsorted(self.rows, [lo, hi])
                if a == b:
                    continue
                take = self.rows[a:b] - lo
            block = read_rows(self.features, lo, hi, native=True)
            x = self.std.transform(block if take is None else block[take], self.device)
            yield done, x
            done += x.shape[0]


def batches(x: torch.Tensor | StreamedRows) -> Iterator[tuple[int, torch.Tensor]]:
    """``(position of the first row, rows)`` of either kind: a tensor is one block."""
    if isinstance(x, torch.Tensor):
        yield 0, x
    else:
        yield from x.blocks()
