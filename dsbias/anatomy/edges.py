"""Canny edges (before augmentation, on the native PIL image): Zeng, Yin & Liu's "structure" transformation.

Their code calls OpenCV: 3x3 Gaussian blur, ``cv2.Canny(img, 85, 255)``, a binary edge map (YCD accuracy 71.0%).
OpenCV is not a dependency of dsbias, so this is the same algorithm in numpy/scipy, with OpenCV's defaults:
3x3 Sobel gradients, L1 magnitude ``|gx| + |gy|``, non-maximum suppression along the gradient direction
quantised to 4 directions, and hysteresis (8-connected weak edges kept when they touch a strong one).
Edge maps may differ from OpenCV's by a few pixels; the information kept is the same kind.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def canny(gray: np.ndarray, low: float, high: float) -> np.ndarray:
    """Binary Canny edges of a 2-D grayscale array in 0..255.

    Args:
        gray: ``[H, W]`` intensities (0..255).
        low: Hysteresis low threshold on the L1 Sobel magnitude.
        high: Hysteresis high threshold.

    Returns:
        ``[H, W]`` bool edge map.
    """
    img = ndimage.gaussian_filter(gray.astype(np.float64), sigma=0.8, truncate=1.25, mode="reflect")  # 3x3
    gx = ndimage.sobel(img, axis=1, mode="reflect")  # [H, W]
    gy = ndimage.sobel(img, axis=0, mode="reflect")
    mag = np.abs(gx) + np.abs(gy)
    # Gradient direction quantised to 0, 45, 90, 135 degrees; compare with the two neighbours along it.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = (np.round(angle / 45.0).astype(np.int64)) % 4  # [H, W] in 0..3
    padded = np.pad(mag, 1, mode="constant")
    h, w = mag.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    # Sector 0: horizontal gradient -> left/right; 1: 45 deg (y down) -> diagonal; 2: vertical; 3: anti-diagonal.
    offsets = {0: ((0, -1), (0, 1)), 1: ((-1, -1), (1, 1)), 2: ((-1, 0), (1, 0)), 3: ((-1, 1), (1, -1))}
    keep = np.zeros_like(mag, dtype=bool)
    for s, (a, b) in offsets.items():
        sel = sector == s
        keep |= sel & (mag > shifted(*a)) & (mag >= shifted(*b))
    nms = np.where(keep, mag, 0.0)
    strong = nms > high
    weak = nms > low
    labels, n = ndimage.label(weak, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros_like(weak)
    has_strong = np.zeros(n + 1, dtype=bool)
    has_strong[np.unique(labels[strong])] = True
    has_strong[0] = False
    return has_strong[labels]


class CannyEdges:
    """PIL RGB -> PIL RGB binary edge map (white edges on black, three equal channels), same size. Deterministic."""

    def __init__(self, low: float, high: float) -> None:
        if not 0 <= low <= high:
            raise ValueError(f"data.anatomy.canny_low={low}, canny_high={high}: need 0 <= low <= high")
        self.low, self.high = low, high

    def __call__(self, img: Image.Image) -> Image.Image:
        gray = np.asarray(img.convert("L"), dtype=np.float64)  # [H, W]
        edges = canny(gray, self.low, self.high)
        return Image.fromarray((edges * 255).astype(np.uint8), "L").convert("RGB")

    def __repr__(self) -> str:
        return f"CannyEdges(low={self.low}, high={self.high})"
