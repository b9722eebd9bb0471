"""The one shorter-side resize: the pixels of Zeng et al.'s ``transforms.Resize(500, BICUBIC)``, never enlarging as
a cap."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from dsbias.anatomy.resize import cap_short_side, resize_short_side, short_side_size


def noisy(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(1000, 750), (750, 1000), (640, 501), (333, 1201), (120, 90), (500, 700)])
def test_resize_short_side_is_torchvisions_resize(size):
    img = noisy(*size)
    ref = T.Resize(500, interpolation=T.InterpolationMode.BICUBIC)(img)  # the reference's call, up or down
    out = resize_short_side(img, 500)
    assert out.size == ref.size and min(out.size) == 500
    assert np.array_equal(np.asarray(out), np.asarray(ref))


def test_the_longer_side_is_truncated_as_torchvision_does():
    assert short_side_size(1000, 750, 500) == (666, 500)  # 666.67 -> 666, not 667
    assert short_side_size(750, 1000, 500) == (500, 666)
    assert short_side_size(500, 500, 500) == (500, 500)


def test_cap_reduces_only_larger_images():
    big, small, edge = noisy(900, 600), noisy(300, 200), noisy(800, 500)
    assert cap_short_side(big, 500).size == (750, 500)
    assert cap_short_side(small, 500) is small  # never enlarged
    assert cap_short_side(edge, 500) is edge  # already at the cap: untouched (no resampling)
    assert cap_short_side(big, 0) is big  # 0 = off
