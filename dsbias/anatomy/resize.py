"""The one shorter-side resize: the 500-px cap (load time and ``tools/prepare.py``), HOG's 500 px, Canny's cap.

Liu & He cap the shorter side at 500 px when they download; Zeng, Yin & Liu's code does it with torchvision's
``transforms.Resize(500, InterpolationMode.BICUBIC)`` on the PIL image (``download_with_resize.py``, and again
before Canny and HOG). That call keeps the aspect ratio with one rule: the shorter side becomes exactly ``side``
and the longer one ``int(side * long / short)`` (truncated, not rounded), then PIL's bicubic resampling (with
its antialiasing when reducing). :func:`short_side_size` is that rule and :data:`RESAMPLE` that kernel, so an
image capped here has the reference's pixels (the tests compare with torchvision's call).
"""

from __future__ import annotations

from PIL import Image

RESAMPLE = Image.Resampling.BICUBIC


def short_side_size(width: int, height: int, side: int) -> tuple[int, int]:
    """``(width, height)`` with the shorter side ``side`` and the aspect ratio kept (torchvision's rule)."""
    if width <= height:
        return side, int(side * height / width)
    return int(side * width / height), side


def resize_short_side(img: Image.Image, side: int) -> Image.Image:
    """``img`` with its shorter side resized to ``side`` (down or up, bicubic); ``img`` itself if already so."""
    size = short_side_size(img.width, img.height, side)
    return img if size == img.size else img.resize(size, RESAMPLE)


def cap_short_side(img: Image.Image, cap: int) -> Image.Image:
    """``img`` with its shorter side reduced to ``cap`` when it is longer (never enlarged); ``cap=0``: unchanged."""
    return resize_short_side(img, cap) if cap and min(img.size) > cap else img
