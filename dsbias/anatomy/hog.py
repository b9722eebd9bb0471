"""HOG, visualised (before augmentation, on the decoded PIL image): Zeng, Yin & Liu's handcrafted feature.

Their code (``transformations/hog/transform.py`` in boyazeng/understand_bias) resizes every image so that its
shorter side is 500 px (``transforms.Resize(500, BICUBIC)``: small images are upsampled), converts it with
``cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)``, renders ``skimage.feature.hog(gray, visualize=True,
transform_sqrt=True)`` (9 orientations, 8x8-px cells) and min-max scales it to uint8 with ``cv2.normalize``
(YCD accuracy 79.9% in the paper, 79.0% in their README). The fixed 500 px matters: an 8-px cell then covers
the same share of every scene, whatever its native resolution, which is the resolution cue HOG should not keep.

:func:`hog_image` is scikit-image's visualisation, vectorised: square-root gamma, centred-difference gradients,
per-cell means of unsigned orientation weighted by magnitude (bin ``i`` holds ``[i, i + 1) * 180 / n`` degrees), and
for every cell and bin a line through the cell centre, perpendicular to the bin's gradient direction, drawn with
``skimage.draw.line`` and weighted by the bin's value. It equals ``hog(..., visualize=True)[1]`` to float rounding
(scikit-image sums each cell in single precision; the tests compare the two). It does not compute the
block-normalised descriptor, which the picture never uses (so ``cells_per_block``, 3x3 in the reference, is
irrelevant), and it is about five times faster than the per-cell Python loop of ``hog``, which matters because
dsbias computes the transformation every time an image is loaded, where the reference wrote PNG files once (a
deliberate difference: same pixels, no files).

Needs OpenCV and scikit-image (``pip install 'dsbias[anatomy]'``); ``data.transform=hog`` without them stops
when the config loads.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from dsbias.anatomy.resize import resize_short_side
from dsbias.typedconfig import ConfigError

_SQRT_U8 = np.sqrt(np.arange(256, dtype=np.float64))


@lru_cache(maxsize=8)
def _sticks(cell: int, bins: int) -> np.ndarray:
    """``[bins, cell, cell]`` 0/1 masks: the line scikit-image draws in a cell for each orientation bin."""
    from skimage.draw import line  # optional dependency (the anatomy extra)

    radius = cell // 2 - 1
    mid = np.pi * (np.arange(bins) + 0.5) / bins  # bin midpoints
    dr, dc = radius * np.sin(mid), radius * np.cos(mid)
    c = cell // 2
    masks = np.zeros((bins, cell, cell))
    for o in range(bins):
        # skimage: line(int(centre_r - dc), int(centre_c + dr), int(centre_r + dc), int(centre_c - dr)); the
        # centre is an integer larger than the radius, so the offsets are the same in every cell.
        rr, cc = line(int(c - dc[o]), int(c + dr[o]), int(c + dc[o]), int(c - dr[o]))
        masks[o, rr, cc] = 1.0
    return masks


def hog_image(gray: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """scikit-image's HOG picture ``hog(gray, bins, (cell, cell), transform_sqrt=True, visualize=True)[1]``.

    Args:
        gray: ``[H, W]`` intensities >= 0 (uint8 or float).
        cell: Cell side in pixels (>= 2).
        bins: Orientation bins over 0-180 degrees.

    Returns:
        ``[H, W]`` float64 >= 0; pixels beyond the last whole cell are 0.
    """
    # transform_sqrt (a lookup table for uint8: the same float64 values, much faster)
    img = _SQRT_U8[gray] if gray.dtype == np.uint8 else np.sqrt(gray.astype(np.float64))
    g_row = np.zeros_like(img)
    g_col = np.zeros_like(img)
    g_row[1:-1, :] = img[2:, :] - img[:-2, :]
    g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
    h, w = img.shape
    nr, nc = h // cell, w // cell
    out = np.zeros_like(img)
    if nr == 0 or nc == 0:
        return out
    g_row, g_col = g_row[:nr * cell, :nc * cell], g_col[:nr * cell, :nc * cell]  # whole cells only
    mag = np.hypot(g_col, g_row)
    ori = np.arctan2(g_row, g_col) * (180 / np.pi) % 180  # scikit-image's expression; in [0, 180]
    # Bin i holds edges[i] <= ori < edges[i + 1], the edges held as C floats as in scikit-image; a value of
    # exactly 180 (from a tiny negative angle) falls in no bin there either (b == bins below).
    edges = (180.0 / bins * np.arange(1, bins + 1)).astype(np.float32).astype(np.float64)
    b = np.zeros(ori.shape, dtype=np.int64)
    for e in edges:
        b += ori >= e
    cell_id = np.arange(nr).repeat(cell)[:, None] * nc + np.arange(nc).repeat(cell)[None, :]  # [H', W']
    ids = np.where(b < bins, cell_id * bins + b, nr * nc * bins)  # out-of-range angles into a dropped slot
    hist = np.bincount(ids.ravel(), weights=mag.ravel(), minlength=nr * nc * bins + 1)[:-1]
    hist = hist.reshape(nr, nc, bins) / (cell * cell)
    vis = np.tensordot(hist, _sticks(cell, bins), axes=(2, 0))  # [nr, nc, cell, cell]
    out[:nr * cell, :nc * cell] = vis.transpose(0, 2, 1, 3).reshape(nr * cell, nc * cell)
    return out


class HOGImage:
    """PIL RGB -> PIL RGB HOG picture (three equal channels, uint8 min-max scaled). Deterministic.

    The output has the resized image's size: shorter side ``short_side`` (500 in the reference; 0 keeps the
    native size, which lets the cell size vary with the image's resolution).
    """

    def __init__(self, cell: int, bins: int, short_side: int = 500) -> None:
        if cell < 2 or bins < 1:
            raise ConfigError(f"data.anatomy.hog_cell={cell} (>= 2) and hog_orientations={bins} (>= 1)")
        if short_side < 0:
            raise ConfigError(f"data.anatomy.hog_short_side={short_side}: must be >= 0 (0 = native size)")
        self.cell, self.bins, self.short_side = cell, bins, short_side

    def __call__(self, img: Image.Image) -> Image.Image:
        import cv2  # optional dependency (the anatomy extra)

        img = img.convert("RGB")
        if self.short_side:
            img = resize_short_side(img, self.short_side)
        gray = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2GRAY)  # [H, W] uint8, OpenCV's rounding as theirs
        vis = hog_image(gray, self.cell, self.bins)
        arr = cv2.normalize(vis, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)  # [H, W] uint8
        return Image.fromarray(arr, "L").convert("RGB")

    def __repr__(self) -> str:
        return f"HOGImage(cell={self.cell}, orientations={self.bins}, short_side={self.short_side})"
