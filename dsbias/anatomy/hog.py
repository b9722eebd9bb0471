"""HOG, visualised (before augmentation, on the native PIL image): Zeng, Yin & Liu's handcrafted feature.

Their code renders scikit-image's ``hog(..., transform_sqrt=True, visualize=True)`` (YCD accuracy 79.9% in the
paper, 79.0% in their README). scikit-image is not a dependency of dsbias, so this is the same visualisation in
numpy: square-root gamma, centred-difference gradients, per-cell histograms of unsigned orientation weighted by
magnitude, and for every cell and bin a line through the cell centre, perpendicular to the bin's gradient
direction, whose brightness is the bin's value. The result is scaled to 0..255.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _sticks(cell: int, bins: int) -> np.ndarray:
    """``[bins, cell, cell]`` float masks: the line drawn for each orientation bin (as skimage draws it)."""
    radius = cell // 2 - 1
    masks = np.zeros((bins, cell, cell))
    if radius < 1:
        masks[:, cell // 2, cell // 2] = 1.0  # cells too small for a line: a dot
        return masks
    mid = np.pi * (np.arange(bins) + 0.5) / bins
    c = cell // 2
    for b, a in enumerate(mid):
        dr, dc = radius * np.sin(a), radius * np.cos(a)
        r0, c0, r1, c1 = int(c - dc), int(c + dr), int(c + dc), int(c - dr)
        n = max(abs(r1 - r0), abs(c1 - c0)) + 1
        rr = np.clip(np.round(np.linspace(r0, r1, n)).astype(int), 0, cell - 1)
        cc = np.clip(np.round(np.linspace(c0, c1, n)).astype(int), 0, cell - 1)
        masks[b, rr, cc] = 1.0
    return masks


def hog_image(gray: np.ndarray, cell: int, bins: int) -> np.ndarray:
    """The HOG visualisation of a ``[H, W]`` grayscale array in [0, 1]. Returns ``[H, W]`` float64 (>= 0).

    Pixels beyond the last whole cell stay 0 (as in scikit-image).
    """
    img = np.sqrt(np.clip(gray, 0.0, None))  # transform_sqrt
    g_row = np.zeros_like(img)
    g_col = np.zeros_like(img)
    g_row[1:-1, :] = img[2:, :] - img[:-2, :]
    g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
    mag = np.hypot(g_row, g_col)
    ori = np.rad2deg(np.arctan2(g_row, g_col)) % 180.0  # unsigned orientation in [0, 180)
    b = np.minimum((ori / (180.0 / bins)).astype(np.int64), bins - 1)  # [H, W]
    h, w = img.shape
    nr, nc = h // cell, w // cell
    out = np.zeros_like(img)
    if nr == 0 or nc == 0:
        return out
    mag_c = mag[:nr * cell, :nc * cell].reshape(nr, cell, nc, cell)
    bin_c = b[:nr * cell, :nc * cell].reshape(nr, cell, nc, cell)
    hist = np.stack([(mag_c * (bin_c == k)).sum(axis=(1, 3)) for k in range(bins)], axis=-1) / (cell * cell)
    vis = np.einsum("rck,kij->ricj", hist, _sticks(cell, bins))  # [nr, cell, nc, cell]
    out[:nr * cell, :nc * cell] = vis.reshape(nr * cell, nc * cell)
    return out


class HOGImage:
    """PIL RGB -> PIL RGB HOG visualisation of the same size (three equal channels). Deterministic."""

    def __init__(self, cell: int, bins: int) -> None:
        if cell < 2 or bins < 1:
            raise ValueError(f"data.anatomy.hog_cell={cell} (>= 2) and hog_orientations={bins} (>= 1)")
        self.cell, self.bins = cell, bins

    def __call__(self, img: Image.Image) -> Image.Image:
        gray = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
        vis = hog_image(gray, self.cell, self.bins)
        top = vis.max()
        arr = np.zeros(vis.shape, dtype=np.uint8) if top <= 0 else np.round(vis / top * 255.0).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")

    def __repr__(self) -> str:
        return f"HOGImage(cell={self.cell}, orientations={self.bins})"
