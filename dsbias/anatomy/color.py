"""Colour transformations (before augmentation, on the native PIL image): what survives without colour.

- :func:`grayscale`: luma only (ITU-R 601, PIL's ``convert("L")``), repeated to three equal channels, so the
  network input shape stays ``[3, H, W]``; a source signature that lives in chroma (a colour cast) is gone.
- :func:`mean_rgb`: Zeng, Yin & Liu's "mean RGB": every pixel replaced by the image's mean colour, which keeps
  only the global colour statistics (their YCD accuracy: 48.5%, chance 33.3%).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def grayscale(img: Image.Image) -> Image.Image:
    """PIL RGB -> PIL RGB with three equal channels (the luma of ``img``)."""
    return img.convert("L").convert("RGB")


def mean_rgb(img: Image.Image) -> Image.Image:
    """PIL RGB -> constant PIL RGB image of the same size, filled with the (rounded) mean colour of ``img``."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)  # [H, W, 3]
    mean = np.clip(np.round(arr.mean(axis=(0, 1))), 0, 255).astype(np.uint8)  # [3]
    return Image.new("RGB", img.size, tuple(int(c) for c in mean))
