"""Per-image metadata features for the shortcut baseline: native size, aspect, bytes, format, JPEG quality.

Everything here is known before a single pixel is looked at, so a classifier on these features measures how
much of the dataset signal is file metadata (Saleknia & Sabokrou's native-resolution "fingerprint" critique).
The JPEG quality is estimated from the file's luminance quantisation table (read from the header, not
decoded) against the IJG standard table, the way libjpeg scales it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# IJG / JPEG Annex K luminance table, natural (row-major) order: libjpeg's quality 50.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)
BASE_COLUMNS = ["width", "height", "aspect", "log_pixels", "log_bytes", "bits_per_pixel", "jpeg_quality"]


def quality_from_table(table: Sequence[int]) -> float:
    """Estimate libjpeg quality (1..100) from a 64-entry luminance quantisation table in natural order.

    libjpeg scales the standard table by ``s = 5000 / q`` (q < 50) or ``200 - 2 q`` (q >= 50) percent and clamps
    to 1..255; the median ratio over the unclamped entries recovers ``s``.
    """
    q = np.asarray(table, dtype=np.float64)
    if q.shape != (64,):
        raise ValueError(f"quantisation table: expected 64 entries, got {q.shape}")
    free = (q > 1) & (q < 255)
    if not free.any():
        return 100.0 if q.max() <= 1 else 1.0
    scale = float(np.median(100.0 * q[free] / STD_LUMA[free]))
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(np.clip(quality, 1.0, 100.0))


def jpeg_quality(path: str | Path) -> float:
    """Estimated quality of a JPEG file, or NaN when the file is missing, not a JPEG, or has no tables."""
    try:
        with Image.open(path) as img:
            tables = getattr(img, "quantization", None) if img.format == "JPEG" else None
    except (OSError, ValueError, SyntaxError):
        return math.nan
    if not tables or 0 not in tables:
        return math.nan
    return quality_from_table(list(tables[0]))


def metadata_features(rows: Sequence[dict[str, Any]], formats: Sequence[str] | None = None,
                      read_quality: bool = True) -> tuple[np.ndarray, list[str]]:
    """The metadata feature matrix of manifest rows.

    Args:
        rows: Manifest rows (``width``, ``height``, ``format``, ``bytes``; ``item`` a file path for file sources).
        formats: Format one-hot columns (default: the sorted formats in ``rows``; pass the train formats
            when featurising val so both have the same columns).
        read_quality: Read each JPEG file's header for its quality (items that are not files get NaN).

    Returns:
        ``[N, F]`` float64 features (NaN where unknown; the gradient-boosting classifier handles NaN) and the
        column names.
    """
    formats = sorted({str(r["format"]) for r in rows}) if formats is None else list(formats)
    x = np.full((len(rows), len(BASE_COLUMNS) + len(formats)), np.nan)
    for i, r in enumerate(rows):
        w, h, b = float(r["width"]), float(r["height"]), float(r["bytes"])
        q = math.nan
        if read_quality and r["format"] == "JPEG" and Path(str(r["item"])).is_file():
            q = jpeg_quality(r["item"])
        x[i, :len(BASE_COLUMNS)] = [w, h, w / h, math.log(w * h), math.log1p(b), 8.0 * b / (w * h), q]
        if r["format"] in formats:
            x[i, len(BASE_COLUMNS) + formats.index(r["format"])] = 1.0
        x[i, len(BASE_COLUMNS):][np.isnan(x[i, len(BASE_COLUMNS):])] = 0.0
    return x, BASE_COLUMNS + [f"format={f}" for f in formats]
