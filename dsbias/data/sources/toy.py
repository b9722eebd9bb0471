"""``toy`` sources: procedural images with shared content, per-source capture signatures and a bias dial.

No files needed.

Every toy source draws *content* from one distribution (a two-colour gradient, a few random shapes, a
grating texture). Sources differ only by a *capture signature*, scaled by ``bias``:

===========  ====================================================================================
``color``    an additive RGB cast orthogonal to luma (grayscale removes it exactly, before clipping)
``noise``    Gaussian sensor noise, std up to ``bias * 16`` grey levels
``blur``     blur (negative) or sharpening (positive) of strength up to ``bias``
``jpeg``     JPEG round trip at quality ``95 - bias * 70 * level``
``size``     native side ``native_size * (1 + bias * level)`` (only a metadata/resolution cue)
===========  ====================================================================================

Source ``s`` of ``S`` takes evenly spaced levels on each effect, with a different order per effect, so each
effect alone separates all sources. With ``bias = 0`` every source has the same distribution (the null).
Everything is deterministic in ``(seed, source name, item)``.

With ``scene_size = m`` a source draws *scenes*: one content image at twice the size plus a small colour cast
of its own (``scene_signature``), and ``m`` random crops of it (items ``<scene>/<crop>``, drawn scene after
scene), each then passed through the source's signature. Crops of one scene are not independent, which is what
``data.group`` and the group-aware statistics are for: split by scene, a null stays a null; split by crop, a
classifier recognises the scenes of its training set and a null reads as separable.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.decode import ImageInfo, content_hash
from dsbias.seeds import stable_seed
from dsbias.typedconfig import ConfigError

EFFECTS = ("color", "noise", "blur", "jpeg", "size")
# Luma weights (ITU-R 601, what PIL's convert("L") uses).
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Signature:
    """The capture signature of one toy source.

    Attributes:
        cast: Additive RGB offset in grey levels, orthogonal to luma.
        noise_std: Std of additive Gaussian noise, in grey levels.
        sharpness: < 0 blurs (Gaussian radius ``-sharpness``), > 0 sharpens (unsharp mask amount).
        jpeg_quality: JPEG quality of a round trip, or None for none.
        size: Native side in pixels.
    """

    cast: tuple[float, float, float]
    noise_std: float
    sharpness: float
    jpeg_quality: int | None
    size: int


def make_signature(
    signature_id: int, num_sources: int, bias: float, effects: list[str] | tuple[str, ...], size: int
) -> Signature:
    """The signature of source ``signature_id`` out of ``num_sources``.

    Args:
        signature_id: Rank of the source (0..S-1).
        num_sources: Number of toy sources S sharing the spacing.
        bias: Strength (0 = no difference between sources).
        effects: Which of :data:`EFFECTS` carry the signature; the others stay at their neutral value.
        size: Base native side in pixels.
    """
    unknown = set(effects) - set(EFFECTS)
    if unknown:
        raise ConfigError(f"data.sources[].signature: unknown toy signature effects {sorted(unknown)} (use "
                          f"{', '.join(EFFECTS)})")
    s, n = signature_id, max(num_sources, 2)

    def level(shift: int) -> float:
        """Evenly spaced level in [0, 1], permuted differently for each effect."""
        return ((s + shift) % n) / (n - 1)

    # Cast: a direction on the circle in the plane orthogonal to luma, one angle per source.
    u = np.array([1.0, -1.0, 0.0])
    u -= u @ _LUMA / (_LUMA @ _LUMA) * _LUMA
    u /= np.linalg.norm(u)
    v = np.cross(_LUMA / np.linalg.norm(_LUMA), u)
    angle = 2 * math.pi * s / n
    cast = (math.cos(angle) * u + math.sin(angle) * v) * 40.0 * bias if "color" in effects else np.zeros(3)
    cast = cast - (cast @ _LUMA) / (_LUMA @ _LUMA) * _LUMA  # exact orthogonality after float error
    return Signature(
        cast=tuple(float(c) for c in cast),  # type: ignore[arg-type]
        noise_std=16.0 * bias * level(1) if "noise" in effects else 0.0,
        sharpness=bias * (2 * level(2) - 1) if "blur" in effects else 0.0,
        jpeg_quality=round(95 - 70 * bias * level(0)) if "jpeg" in effects else None,
        size=round(size * (1 + bias * level(3))) if "size" in effects else size,
    )


def render_content(rng: np.random.Generator, size: int) -> Image.Image:
    """Draw one content image (same distribution for every source).

    Args:
        rng: Source of randomness for this image.
        size: Side in pixels.

    Returns:
        An RGB image of ``size x size``.
    """
    # Background: a linear gradient between two random colours at a random angle.
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (math.cos(theta) * (xx - 0.5) + math.sin(theta) * (yy - 0.5)) / 0.7071 * 0.5 + 0.5  # [H, W]
    arr = c0 * (1 - t[..., None]) + c1 * t[..., None]  # [H, W, 3]
    # Texture: a faint sinusoidal grating.
    if rng.random() < 0.5:
        f, phi = rng.uniform(2, 12), rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * f * (math.cos(phi) * xx + math.sin(phi) * yy))
        arr += rng.uniform(10, 40) * wave[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    # Objects: 1-4 random shapes.
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 5))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.2, 0.9, 2) * size
        w, h = rng.uniform(0.15, 0.6, 2) * size
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            pts = [tuple(p) for p in (rng.uniform(0, 1, (int(rng.integers(3, 6)), 2)) * size)]
            draw.polygon(pts, fill=colour)
    return img


def apply_signature(img: Image.Image, sig: Signature, rng: np.random.Generator) -> tuple[Image.Image, bytes]:
    """Pass a content image through a source's capture pipeline.

    Order follows a camera: optics (blur/sharpen), sensor noise, colour processing (cast), then the codec.

    Returns:
        The captured RGB image and its encoded bytes (JPEG if the signature has a quality, else PNG).
    """
    if sig.sharpness < 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=-sig.sharpness * 1.5))
    elif sig.sharpness > 0:
        img = img.filter(ImageFilter.UnsharpMask(radius=2, percent=int(200 * sig.sharpness), threshold=0))
    arr = np.asarray(img, dtype=np.float32)  # [H, W, 3]
    if sig.noise_std > 0:
        arr = arr + rng.normal(0.0, sig.noise_std, arr.shape).astype(np.float32)
    if any(sig.cast):
        arr = arr + np.asarray(sig.cast, dtype=np.float32)
    img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if sig.jpeg_quality is not None:
        img.save(buf, format="JPEG", quality=int(sig.jpeg_quality))
        data = buf.getvalue()
        img = Image.open(io.BytesIO(data)).convert("RGB")
    else:
        img.save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
    return img, data


def render_toy(seed: int, source: str, item: int, sig: Signature) -> tuple[Image.Image, bytes]:
    """Render item ``item`` of toy source ``source``: shared content, then that source's signature.

    The content seed does not depend on the signature, only on ``(seed, source, item)``, so with equal
    signatures two sources are two samples of one distribution.
    """
    rng = np.random.default_rng(stable_seed("toy", seed, source, item))
    return apply_signature(render_content(rng, sig.size), sig, rng)


@functools.lru_cache(maxsize=64)
def render_scene(seed: int, source: str, scene: int, size: int, strength: float) -> tuple[Image.Image, np.ndarray]:
    """Scene ``scene`` of a toy source: content at ``2 * size`` and its own RGB cast ``[3]`` (grey levels)."""
    rng = np.random.default_rng(stable_seed("toy-scene", seed, source, scene))
    content = render_content(rng, 2 * size)
    direction = rng.normal(size=3)
    return content, direction / np.linalg.norm(direction) * 40.0 * strength


def render_scene_crop(seed: int, source: str, scene: int, crop: int, sig: Signature,
                      strength: float) -> tuple[Image.Image, bytes]:
    """Crop ``crop`` of scene ``scene``: a random ``size`` window of the scene, its cast, then the signature."""
    content, cast = render_scene(seed, source, scene, sig.size, strength)
    rng = np.random.default_rng(stable_seed("toy", seed, source, scene, crop))
    x0, y0 = (int(v) for v in rng.integers(0, sig.size + 1, 2))
    arr = np.asarray(content.crop((x0, y0, x0 + sig.size, y0 + sig.size)), dtype=np.float32) + cast
    img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    return apply_signature(img, sig, rng)


class ToySource:
    """A procedural source; items are integers as text (``<scene>/<crop>`` with scenes)."""

    def __init__(self, name: str, seed: int, signature_id: int, num_toy: int, cfg: SourceConfig, size: int):
        self.name = name
        self.seed = seed
        self.scene_size = cfg.scene_size
        self.scene_signature = cfg.scene_signature
        self.signature = make_signature(signature_id, num_toy, cfg.bias, cfg.signature, cfg.native_size or size)

    def sample_order(self, seed: int) -> Iterable[str]:
        # Toy items are i.i.d. already; the content seed is the data seed, so item order can be 0, 1, 2...
        # Scenes come whole, one after another, as the crops of a few hundred photos would.
        if self.scene_size:
            return (f"{i // self.scene_size}/{i % self.scene_size}" for i in itertools.count())
        return (str(i) for i in itertools.count())

    def _render(self, item: str) -> tuple[Image.Image, bytes]:
        if "/" in item:
            scene, crop = item.split("/")
            return render_scene_crop(self.seed, self.name, int(scene), int(crop), self.signature,
                                     self.scene_signature)
        return render_toy(self.seed, self.name, int(item), self.signature)

    def read(self, item: str) -> tuple[Image.Image, ImageInfo]:
        img, data = self._render(item)
        fmt = "JPEG" if self.signature.jpeg_quality is not None else "PNG"
        return img, ImageInfo(width=img.width, height=img.height, format=fmt, bytes=len(data),
                              sha1=content_hash(data), mode="RGB")

    def read_bytes(self, item: str) -> bytes:
        """The item encoded as its signature says (JPEG or PNG)."""
        return self._render(item)[1]


def create(cfg: SourceConfig, data: DataConfig) -> ToySource:
    """Signatures are spaced over the toy sources of ``data``; this one's is its rank among them."""
    toys = [s for s in data.sources if s.kind == "toy"]
    rank = [s.name for s in toys].index(cfg.name)
    sig_id = cfg.signature_id if cfg.signature_id is not None else rank
    return ToySource(cfg.name, data.seed, sig_id, len(toys), cfg, data.image_size)
