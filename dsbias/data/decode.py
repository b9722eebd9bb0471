"""Robust image decoding: every file becomes an RGB image or a :class:`DecodeError` with a reason.

Nothing is ever replaced by a placeholder: a placeholder (VISSL's gray image) is itself a source-correlated
artefact that a dataset classifier would learn. Failures are counted per source by the manifest builder.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Truncated files are errors, not partially decoded images.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class DecodeError(Exception):
    """An image could not be used; ``reason`` is a short code counted in the manifest summary."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    """What is known of an image before any resizing: native size, container format and byte count."""

    width: int
    height: int
    format: str
    bytes: int
    sha1: str = ""  # of the stored bytes: exact-duplicate key (dsbias.data.dedup)
    mode: str = ""  # PIL mode as stored (L, RGB, CMYK, P, I;16...), before conversion to RGB


def content_hash(data: bytes) -> str:
    """Hex SHA-1 of an image's bytes (the same as ``sha1sum`` of the file): its exact-duplicate key."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB the way a reader would expect to see it."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16/32-bit grey: PIL's convert("RGB") clips at 255 (mostly white); scale the range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL asks for this before dropping palette transparency
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Same result as torchvision's loader (alpha dropped), without PIL's palette warning.
        return img.convert("RGBA").convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return img


def decode_image(data: bytes | str | Path, max_pixels: int = 100_000_000) -> tuple[Image.Image, ImageInfo]:
    """Decode an image fully (so truncation is caught here, not in a training step).

    Args:
        data: Encoded bytes or a file path.
        max_pixels: Larger images are refused as decompression bombs.

    Returns:
        The RGB image, EXIF orientation applied, and its native :class:`ImageInfo` (size after orientation;
        ``sha1`` of the bytes). Modes are converted as a viewer shows them: CMYK and YCbCr to RGB, 16-bit grey
        scaled (not clipped) to 8 bits, alpha (RGBA, LA, palette transparency) dropped.

    Raises:
        DecodeError: ``missing``, ``empty``, ``not_an_image``, ``too_large`` or ``truncated``.
    """
    if not isinstance(data, bytes):
        try:
            data = Path(data).read_bytes()
        except OSError as e:
            raise DecodeError("missing", f"{data}: {e.strerror}") from None
    if len(data) == 0:
        raise DecodeError("empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            mode = img.mode
            if img.width * img.height > max_pixels:
                raise DecodeError("too_large", f"{img.width}x{img.height} > {max_pixels} pixels")
            img.load()
    except DecodeError:
        raise
    except (UnidentifiedImageError, SyntaxError) as e:
        raise DecodeError("not_an_image", str(e)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DecodeError("too_large", str(e)) from None
    except (OSError, ValueError, EOFError) as e:
        raise DecodeError("truncated", str(e)) from None
    try:
        img = ImageOps.exif_transpose(img) or img
    except (OSError, ValueError, SyntaxError):
        pass  # a broken EXIF block: keep the pixels as stored
    img = _to_rgb(img)
    return img, ImageInfo(width=img.width, height=img.height, format=fmt, bytes=len(data),
                          sha1=content_hash(data), mode=mode)
