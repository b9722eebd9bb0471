"""Resolution and codec transformations (before augmentation, on the native PIL image).

Saleknia & Sabokrou (2026) argue that much of the dataset signal is native resolution and codec traces. These
make both uniform or coarse, so the classifier's accuracy with and without them says how much rests on them:

- :class:`JpegRoundTrip` (``jpeg``): every image JPEG-encoded and decoded at one quality (at native size).
- :class:`DownUp` (``downup``): shorter side reduced to N (bicubic, aspect kept) and back to the native size,
  so detail finer than N pixels is gone but the image keeps its size.
- :class:`Canonicalize` (``canonical``): the re-encode control. Every image becomes one square size (shorter
  side resized with one kernel, center crop) and is re-encoded with one codec and quality. If a classifier
  still separates the sources after this, on train and val, the signal is not (only) native size, aspect or
  codec.
"""

from __future__ import annotations

import io

from PIL import Image

from dsbias.typedconfig import ConfigError

_RESAMPLE = Image.Resampling.BICUBIC


def encode_decode(img: Image.Image, fmt: str, quality: int) -> Image.Image:
    """Round-trip ``img`` through the codec ``fmt`` (``JPEG``, ``PNG``, ``WEBP``) with PIL's defaults otherwise."""
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format=fmt, quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


class JpegRoundTrip:
    """PIL RGB -> PIL RGB after one JPEG encode/decode at ``quality`` (deterministic)."""

    def __init__(self, quality: int) -> None:
        if not 1 <= quality <= 100:
            raise ConfigError(f"data.anatomy.jpeg_quality={quality}: must be in 1..100")
        self.quality = quality

    def __call__(self, img: Image.Image) -> Image.Image:
        return encode_decode(img.convert("RGB"), "JPEG", self.quality)

    def __repr__(self) -> str:
        return f"JpegRoundTrip(quality={self.quality})"


class DownUp:
    """PIL RGB -> PIL RGB of the same size, through a copy whose shorter side is ``size`` (bicubic both ways).

    An image whose shorter side is already ``<= size`` is returned unchanged (there is nothing to remove).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigError(f"data.anatomy.downup_size={size}: must be >= 1")
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        short = min(w, h)
        if short <= self.size:
            return img
        small = (max(1, round(w * self.size / short)), max(1, round(h * self.size / short)))
        return img.resize(small, _RESAMPLE).resize((w, h), _RESAMPLE)

    def __repr__(self) -> str:
        return f"DownUp(size={self.size})"


class Canonicalize:
    """PIL RGB -> ``size x size`` PIL RGB: shorter side to ``size`` (bicubic), center crop, one codec round trip."""

    def __init__(self, size: int, fmt: str = "JPEG", quality: int = 90) -> None:
        if size < 8:
            raise ConfigError(f"data.anatomy.canonical_size={size}: must be >= 8")
        if fmt not in ("JPEG", "PNG", "WEBP"):
            raise ConfigError(f"data.anatomy.canonical_format={fmt!r}: use JPEG, PNG or WEBP")
        if not 1 <= quality <= 100:
            raise ConfigError(f"data.anatomy.canonical_quality={quality}: must be in 1..100")
        self.size, self.fmt, self.quality = size, fmt, quality

    def resize_crop(self, img: Image.Image) -> Image.Image:
        """Shorter side to ``size`` (up or down, one kernel), then the central ``size x size`` square."""
        w, h = img.size
        scale = self.size / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        img = img.resize((nw, nh), _RESAMPLE)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        return img.crop((left, top, left + self.size, top + self.size))

    def __call__(self, img: Image.Image) -> Image.Image:
        return encode_decode(self.resize_crop(img.convert("RGB")), self.fmt, self.quality)

    def __repr__(self) -> str:
        return f"Canonicalize(size={self.size}, format={self.fmt}, quality={self.quality})"
