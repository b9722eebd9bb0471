"""Canny edges (before augmentation, on the decoded PIL image): Zeng, Yin & Liu's "structure" transformation.

Computed as their code computes it (``transformations/canny/transform.py`` in boyazeng/understand_bias), with the
same OpenCV calls: the shorter side capped at 500 px (bicubic, :func:`~dsbias.anatomy.resize.cap_short_side`),
``cv2.GaussianBlur(rgb, (3, 3), 0)`` on the 3-channel uint8 RGB array (sigma 0: OpenCV's fixed 3x3 kernel,
``[1, 2, 1] / 4`` per axis, reflected borders), then ``cv2.Canny(blurred, 85, 255)``: 3x3 Sobel, L1 magnitude,
non-maximum suppression, hysteresis. On a 3-channel input OpenCV takes, per pixel, the channel with the largest
gradient, so a boundary between two colours of equal luma is an edge too (a luma-only Canny misses it and gives
sparser maps). The result is binary (0 / 255), YCD accuracy 71.0% in the paper.

Deliberate difference: the reference writes the edge maps to PNG files once and trains on those; here they are
computed on the fly from the decoded image (same pixels, no files). The training view of the reference (random
resized crop, no flip, no normalisation) is declared by the ``canny`` entry of
:data:`dsbias.anatomy.transforms.TRANSFORMS` and honoured by the views.

Needs OpenCV (``pip install 'dsbias[anatomy]'``, the headless wheel); ``data.transform=canny`` without it stops
when the config loads.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dsbias.anatomy.resize import cap_short_side
from dsbias.typedconfig import ConfigError


def canny_edges(rgb: np.ndarray, low: float, high: float) -> np.ndarray:
    """Binary Canny edges of an RGB image, as ``cv2.Canny(cv2.GaussianBlur(rgb, (3, 3), 0), low, high)``.

    Args:
        rgb: ``[H, W, 3]`` uint8.
        low: Hysteresis low threshold on the L1 Sobel magnitude (of the largest-gradient channel).
        high: Hysteresis high threshold.

    Returns:
        ``[H, W]`` uint8, 0 or 255.
    """
    import cv2  # optional dependency (the anatomy extra); checked when the config loads

    blurred = cv2.GaussianBlur(np.ascontiguousarray(rgb), (3, 3), 0)
    return cv2.Canny(blurred, low, high)


class CannyEdges:
    """PIL RGB -> PIL RGB binary edge map (white edges on black, three equal channels). Deterministic.

    The output has the size of the capped image: the shorter side is at most ``max_short_side`` (500 in the
    reference; 0 keeps the native size).
    """

    def __init__(self, low: float, high: float, max_short_side: int = 500) -> None:
        if not 0 <= low <= high:
            raise ConfigError(f"data.anatomy.canny_low={low}, canny_high={high}: need 0 <= low <= high")
        if max_short_side < 0:
            raise ConfigError(f"data.anatomy.canny_max_short_side={max_short_side}: must be >= 0 (0 = native size)")
        self.low, self.high, self.max_short_side = low, high, max_short_side

    def __call__(self, img: Image.Image) -> Image.Image:
        rgb = np.asarray(cap_short_side(img.convert("RGB"), self.max_short_side))  # [H, W, 3] uint8
        return Image.fromarray(canny_edges(rgb, self.low, self.high), "L").convert("RGB")

    def __repr__(self) -> str:
        return f"CannyEdges(low={self.low}, high={self.high}, max_short_side={self.max_short_side})"
