"""Spatial shuffles (after augmentation, on the ``[C, H, W]`` tensor): Zeng, Yin & Liu's pixel and patch shuffle.

Pixel shuffle destroys all spatial structure and keeps the colour/intensity histogram; patch shuffle keeps
local structure inside ``patch x patch`` tiles and destroys the global layout. Two orders:

- ``fixed``: one permutation for every image, drawn from ``data.anatomy.shuffle_seed`` and the image size. It
  lives in memory only (the original code cached it in the working directory, so every seed and run shared it).
- ``random``: a different permutation per image. It is seeded by the image tensor's own bytes (and the seed),
  so the same input always gives the same output (val is deterministic), while different images, and the
  different random crops of one training image, get different permutations.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from dsbias.seeds import stable_seed
from dsbias.typedconfig import ConfigError


def content_seed(x: torch.Tensor, salt: str) -> int:
    """A 63-bit seed from a tensor's shape, dtype and bytes, and ``salt`` (stable across processes)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{salt}|{tuple(x.shape)}|{x.dtype}".encode())
    h.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


def _perm(n: int, seed: int) -> torch.Tensor:
    """A permutation of ``n`` from a private generator (the global RNGs are left alone)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)


class Shuffle:
    """``[C, H, W]`` tensor -> the same pixels (``patch = 1``) or patches rearranged; shape and dtype kept.

    Args:
        patch: Tile side in pixels (1 = pixel shuffle); must divide H and W.
        fixed: One permutation for all images (else one per image, seeded by its content).
        seed: ``data.anatomy.shuffle_seed``.
    """

    def __init__(self, patch: int, fixed: bool, seed: int) -> None:
        if patch < 1:
            raise ConfigError(f"data.anatomy.patch_size={patch}: must be >= 1")
        self.patch, self.fixed, self.seed = patch, fixed, seed
        self._fixed: dict[tuple[int, int], torch.Tensor] = {}

    def permutation(self, x: torch.Tensor) -> torch.Tensor:
        """The permutation of the ``(H / patch) * (W / patch)`` tiles used for ``x``."""
        _, h, w = x.shape
        p = self.patch
        if h % p or w % p:
            raise ConfigError(f"data.anatomy.patch_size={p} does not divide the {h}x{w} input "
                             "(pick a divisor of data.image_size)")
        n = (h // p) * (w // p)
        if not self.fixed:
            return _perm(n, content_seed(x, f"shuffle:{p}:{self.seed}"))
        if (h, w) not in self._fixed:
            self._fixed[(h, w)] = _perm(n, stable_seed("fixed_shuffle", self.seed, p, h, w))
        return self._fixed[(h, w)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"shuffle: expected a [C, H, W] tensor, got {tuple(x.shape)}")
        c, h, w = x.shape
        p = self.patch
        perm = self.permutation(x)
        gh, gw = h // p, w // p
        tiles = x.reshape(c, gh, p, gw, p).permute(1, 3, 0, 2, 4).reshape(gh * gw, c, p, p)  # [N, C, p, p]
        tiles = tiles[perm]
        return tiles.reshape(gh, gw, c, p, p).permute(2, 0, 3, 1, 4).reshape(c, h, w).contiguous()

    def __repr__(self) -> str:
        kind = "Pixel" if self.patch == 1 else f"Patch{self.patch}"
        return f"{kind}Shuffle({'fixed' if self.fixed else 'random'}, seed={self.seed})"
