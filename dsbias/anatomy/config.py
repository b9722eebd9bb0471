"""The ``data.anatomy`` section: parameters of the bias-anatomy transformations (:mod:`dsbias.anatomy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class AnatomyConfig:
    """Parameters of the bias-anatomy transformations (``data.transform``; see :mod:`dsbias.anatomy`).

    Attributes:
        freq_threshold: Low/high-pass cut-off radius in FFT bins *at* ``freq_ref_size`` (Zeng et al. use 40 at
            224 px); the radius used is ``freq_threshold * image_size / freq_ref_size``, so the same fraction
            of the spectrum is kept at any input size.
        freq_ref_size: Input side at which ``freq_threshold`` is given.
        filter: ``ideal`` (a hard disc) or ``butterworth`` (smooth, of order ``filter_order``).
        filter_order: Butterworth order.
        patch_size: Patch shuffle: patch side in network-input pixels (must divide ``image_size``).
        shuffle_seed: Seed of the fixed pixel/patch permutation (the same for every image, never cached on disk).
        canny_low: Canny hysteresis thresholds on the 0-255 L1 Sobel magnitude (Zeng et al.: 85 / 255).
        canny_high: See ``canny_low``.
        canny_max_short_side: Canny runs on the image with its shorter side capped at this (bicubic), as Zeng
            et al. do (500); 0 = the decoded size.
        hog_cell: HOG cell side in pixels of the resized image (Zeng et al.: 8).
        hog_orientations: HOG orientation bins (Zeng et al.: 9).
        hog_short_side: HOG runs on the image with its shorter side resized to this, up or down (bicubic), as
            Zeng et al. do (500), so a cell covers the same share of every scene; 0 = the decoded size.
        downup_size: ``downup``: shorter side the image is reduced to before going back to its native size.
        jpeg_quality: ``jpeg``: quality of the JPEG round trip.
        canonical_size: ``canonical``: every image becomes this square size (shorter side resized, center crop).
        canonical_format: ``canonical``: the one codec every image is re-encoded with.
        canonical_quality: ``canonical``: JPEG/WebP quality.
        model_path: Model-based transformations (segmentation, depth, captions...): local weights; nothing downloads.
    """

    freq_threshold: float = 40.0
    freq_ref_size: int = 224
    filter: Literal["ideal", "butterworth"] = "ideal"
    filter_order: int = 2
    patch_size: int = 16
    shuffle_seed: int = 0
    canny_low: float = 85.0
    canny_high: float = 255.0
    canny_max_short_side: int = 500
    hog_cell: int = 8
    hog_orientations: int = 9
    hog_short_side: int = 500
    downup_size: int = 32
    jpeg_quality: int = 75
    canonical_size: int = 256
    canonical_format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    canonical_quality: int = 90
    model_path: str | None = None

