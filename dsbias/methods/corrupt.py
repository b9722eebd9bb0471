"""Fixed corruptions of Liu & He's low-level-signature control (Table 5), applied to train AND val images.

If a classifier still names the dataset after every image (train and val) has been blurred, noised,
colour-jittered or reduced to 32x32, the bias it uses is not a fine low-level signature. The paper gives the
kinds and strengths but not the code; the choices here (documented in :class:`dsbias.methods.config.CorruptConfig`):

- the corruption is applied to the network-size image (after cropping, before normalisation), so a strength
  means the same at any native resolution;
- its randomness is seeded by the image's pixels (and the corruption's own parameters), so a val image gets the
  same corruption every time and the network cannot average it away over repeated views of a val image.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from dsbias.methods.config import CorruptConfig
from dsbias.typedconfig import ConfigError


def content_seed(img: Image.Image, salt: str) -> int:
    """A 63-bit seed from the image's pixels, size and ``salt`` (deterministic across processes and runs)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(salt.encode())
    h.update(f"{img.mode}{img.size}".encode())
    h.update(img.tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


class Corruption:
    """PIL RGB image -> corrupted PIL RGB image of the same size (deterministic per image content).

    Args:
        cfg: Kind and strength (``kind: none`` is the identity).
    """

    def __init__(self, cfg: CorruptConfig) -> None:
        if cfg.kind != "none" and cfg.strength <= 0:
            raise ConfigError(f"method.supervised.corrupt.strength={cfg.strength}: must be > 0 for {cfg.kind}")
        self.kind = cfg.kind
        self.strength = float(cfg.strength)
        self.salt = f"{self.kind}:{self.strength}"
        if self.kind == "color_jitter":
            s = self.strength
            self.jitter = T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.5, 0.2 * s))

    def __call__(self, img: Image.Image) -> Image.Image:
        if self.kind == "none":
            return img
        img = img.convert("RGB")
        if self.kind == "blur":
            return img.filter(ImageFilter.GaussianBlur(radius=self.strength))
        if self.kind == "downsample":
            side = int(self.strength)
            return img.resize((side, side), Image.BICUBIC).resize(img.size, Image.BICUBIC)
        seed = content_seed(img, self.salt)
        if self.kind == "noise":
            rng = np.random.default_rng(seed)
            x = np.asarray(img, dtype=np.float32) / 255.0  # [H, W, 3] in [0, 1]
            x = np.clip(x + rng.normal(0.0, self.strength, x.shape).astype(np.float32), 0.0, 1.0)
            return Image.fromarray(np.round(x * 255.0).astype(np.uint8), "RGB")
        # color_jitter: torchvision draws its factors from the global torch RNG; fork it so the draw depends
        # only on the image, and the caller's RNG stream is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.jitter(img)

    def __repr__(self) -> str:
        return f"Corruption(kind={self.kind}, strength={self.strength})"
