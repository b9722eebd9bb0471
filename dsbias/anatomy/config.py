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
        canny_low: Canny hysteresis thresholds on the 0-255 gradient magnitude (Zeng et al.: 85 / 255).
        canny_high: See ``canny_low``.
        hog_cell: HOG cell side in native pixels.
        hog_orientations: HOG orientation bins.
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
    hog_cell: int = 8
    hog_orientations: int = 9
    downup_size: int = 32
    jpeg_quality: int = 75
    canonical_size: int = 256
    canonical_format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    canonical_quality: int = 90
    model_path: str | None = None

