"""Canny and HOG as Zeng, Yin & Liu compute them: the reference's OpenCV / scikit-image calls, on fixed images made
here, against dsbias's transformations (Canny pixel-exact, HOG to float rounding)."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.feature import hog as skimage_hog
from torchvision import transforms as T

from dsbias.anatomy.edges import CannyEdges
from dsbias.anatomy.hog import HOGImage, hog_image
from dsbias.config import ConfigError, load_config

RESIZE_500 = T.Resize(500, interpolation=T.InterpolationMode.BICUBIC)  # the reference's preprocessing


def scene(w: int, h: int, seed: int = 0) -> Image.Image:
    """Colour blocks (one pair of equal luma), a ramp, a disc and noise: edges of every orientation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.zeros((h, w, 3))
    arr[..., 0] = 255 * xx / w
    arr[..., 1] = 255 * yy / h
    arr[: h // 2, : w // 3] = rng.uniform(0, 255, 3)
    arr[h // 2:, w // 3: 2 * w // 3] = rng.uniform(0, 255, 3)
    r = min(w, h) / 4
    arr[(yy - h * 0.6) ** 2 + (xx - w * 0.7) ** 2 < r * r] = rng.uniform(0, 255, 3)
    arr += rng.normal(0, 6, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def reference_canny(img: Image.Image) -> np.ndarray:
    """transformations/canny/transform.py: cap at 500, GaussianBlur (3, 3) on the RGB array, Canny(255/3, 255)."""
    if min(img.size) > 500:
        img = RESIZE_500(img)
    return cv2.Canny(cv2.GaussianBlur(np.array(img), (3, 3), 0), threshold1=255 / 3, threshold2=255)


def reference_hog(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """transformations/hog/transform.py: Resize(500) always, RGB2GRAY, skimage hog (its defaults), min-max uint8."""
    gray = cv2.cvtColor(np.array(RESIZE_500(img)), cv2.COLOR_RGB2GRAY)
    _, vis = skimage_hog(gray, visualize=True, transform_sqrt=True)
    return vis, cv2.normalize(vis, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)


@pytest.mark.parametrize("size", [(96, 64), (333, 250), (760, 620)])
def test_canny_is_opencv_on_the_rgb_array_pixel_for_pixel(size):
    img = scene(*size, seed=size[0])
    out = np.asarray(CannyEdges(85, 255)(img))
    ref = reference_canny(img)
    assert out.shape[:2] == ref.shape and min(ref.shape) <= 500  # the 760x620 image was capped
    assert np.array_equal(out[..., 0], ref) and np.array_equal(out[..., 1], ref) and np.array_equal(out[..., 2], ref)
    assert 0 < (ref > 0).mean() < 0.5 and set(np.unique(ref)) == {0, 255}


def test_canny_finds_a_boundary_between_two_colours_of_equal_luma():
    """The reason for running Canny on RGB: a luma-only edge detector cannot see a hue-only boundary."""
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[:, :20] = (200, 80, 120)
    arr[:, 20:] = (60, 160, 80)  # the same BT.601 luma (~120) as the left half, another hue
    gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    assert np.ptp(gray) <= 1  # luma is flat ...
    assert not cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 85, 255).any()  # ... so a luma Canny sees nothing
    edges = np.asarray(CannyEdges(85, 255)(Image.fromarray(arr)))[..., 0] > 0
    assert edges[2:-2, 18:22].any(axis=1).all() and not edges[:, :16].any() and not edges[:, 24:].any()


def test_canny_cap_can_be_turned_off():
    img = scene(760, 620)
    assert CannyEdges(85, 255)(img).size == (612, 500)
    assert CannyEdges(85, 255, max_short_side=0)(img).size == (760, 620)


@pytest.mark.parametrize("size", [(48, 40), (560, 700), (900, 520)])
def test_hog_is_skimage_after_the_500px_resize(size):
    img = scene(*size, seed=size[1])
    vis, ref_u8 = reference_hog(img)
    gray = cv2.cvtColor(np.array(RESIZE_500(img)), cv2.COLOR_RGB2GRAY)
    ours = hog_image(gray, 8, 9)
    assert ours.shape == vis.shape and min(vis.shape) == 500  # small images are upsampled, large ones reduced
    np.testing.assert_allclose(ours, vis, rtol=0, atol=1e-6 * vis.max())  # skimage sums cells in single precision
    out = np.asarray(HOGImage(8, 9)(img))
    assert out.shape == (*ref_u8.shape, 3) and np.array_equal(out[..., 0], out[..., 2])
    diff = np.abs(out[..., 0].astype(int) - ref_u8)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # a rounding tie may fall the other way
    assert ref_u8.max() == 255 and (ref_u8 > 0).mean() > 0.05


@pytest.mark.parametrize("cell,bins", [(4, 9), (6, 12), (7, 8), (16, 9), (2, 9), (3, 5)])
def test_hog_picture_matches_skimage_for_other_cells_and_bins(cell, bins):
    gray = cv2.cvtColor(np.array(scene(70, 53, seed=cell)), cv2.COLOR_RGB2GRAY)
    _, vis = skimage_hog(gray, orientations=bins, pixels_per_cell=(cell, cell), cells_per_block=(1, 1),
                         transform_sqrt=True, visualize=True)
    np.testing.assert_allclose(hog_image(gray, cell, bins), vis, rtol=0, atol=1e-6 * vis.max())


def test_hog_exact_bin_edges_and_flat_images():
    """Gradients exactly on a bin edge (0, 90 degrees) and a flat image (no gradient: an all-zero picture)."""
    stripes = np.zeros((32, 32), np.uint8)
    stripes[:, ::2] = 255
    for a in (stripes, stripes.T, np.full((32, 32), 7, np.uint8)):
        _, vis = skimage_hog(a, cells_per_block=(1, 1), transform_sqrt=True, visualize=True)
        np.testing.assert_allclose(hog_image(a, 8, 9), vis, rtol=0, atol=1e-6 * max(vis.max(), 1))
    assert not np.asarray(HOGImage(8, 9, short_side=0)(Image.fromarray(np.full((32, 32, 3), 7, np.uint8)))).any()


def test_hog_native_size_when_asked():
    img = scene(96, 64)
    assert HOGImage(8, 9)(img).size == (750, 500)
    assert HOGImage(8, 9, short_side=0)(img).size == (96, 64)


def test_canny_and_hog_without_the_extra_stop_at_config_load(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("cv2", "skimage")
                        else real(name, *a))
    for name, what in (("canny", "OpenCV"), ("hog", "OpenCV .* and scikit-image")):
        with pytest.raises(ConfigError, match=rf"'{name}' needs {what}.*pip install 'dsbias\[anatomy\]'"):
            load_config(None, ["data=toy", f"data.transform={name}"])
    load_config(None, ["data=toy", "data.transform=grayscale"])  # the others need nothing
