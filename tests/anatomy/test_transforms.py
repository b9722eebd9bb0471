"""Bias-anatomy transformations: deterministic where they should be, shape/dtype kept, and each removes what
it claims to remove."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dsbias.anatomy.codec import Canonicalize, DownUp, JpegRoundTrip
from dsbias.anatomy.color import grayscale, mean_rgb
from dsbias.anatomy.edges import CannyEdges
from dsbias.anatomy.frequency import FrequencyFilter, radial_distance
from dsbias.anatomy.hog import HOGImage
from dsbias.anatomy.shuffle import Shuffle
from dsbias.anatomy.transforms import create_anatomy_transforms, parse_transform
from dsbias.config import ConfigError, load_config
from dsbias.data.views import create_eval_transform, to_normalized_tensor


def photo(seed: int = 0, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A small image with colour, edges and texture."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 3 % 256], -1).astype(np.float64)
    arr[h // 4:h // 2, w // 4:w // 2] = rng.uniform(0, 255, 3)
    arr += rng.normal(0, 12, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def tensor(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.asarray(photo(seed, (size, size)), dtype=np.float32) / 255.0).permute(2, 0, 1)


def data_cfg(transform: str, *over: str):
    return load_config(None, ["data=toy", f"data.transform={transform}", *over]).data


# HOG at its native size here (its 500-px resize is tested in test_edges_hog.py).
PIL_FNS = [grayscale, mean_rgb, JpegRoundTrip(60), DownUp(8), CannyEdges(85, 255), HOGImage(8, 9, short_side=0)]


@pytest.mark.parametrize("fn", PIL_FNS, ids=repr)
def test_pil_transforms_keep_size_and_are_deterministic(fn):
    img = photo()
    a, b = fn(img), fn(img.copy())
    assert a.mode == "RGB" and a.size == img.size
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(img))  # it did something


def test_grayscale_has_equal_channels():
    a = np.asarray(grayscale(photo()))
    assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])


def test_mean_rgb_is_constant_and_keeps_the_mean():
    img = photo(3)
    a = np.asarray(mean_rgb(img), dtype=np.float64)
    assert a.reshape(-1, 3).var(0).max() == 0.0
    assert np.abs(a[0, 0] - np.asarray(img, dtype=np.float64).mean((0, 1))).max() <= 0.5


def test_jpeg_round_trip_equals_pils_own():
    img = photo(1)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=37)
    ref = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert np.array_equal(np.asarray(JpegRoundTrip(37)(img)), np.asarray(ref))


def test_downup_removes_fine_detail_only():
    img = photo(2, (64, 64))
    out = DownUp(8)(img)
    arr, ref = np.asarray(out, dtype=np.float64), np.asarray(img, dtype=np.float64)
    # High-frequency energy (Laplacian) drops a lot; the coarse layout (8x8 block means) stays close.
    lap = lambda a: np.abs(4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]).mean()  # noqa: E731
    assert lap(arr) < 0.3 * lap(ref)
    blocks = lambda a: a.reshape(8, 8, 8, 8, 3).mean((1, 3))  # noqa: E731
    assert np.abs(blocks(arr) - blocks(ref)).mean() < 12
    assert DownUp(100)(img) is img  # nothing finer than the image itself to remove


def test_canonical_gives_one_size_and_one_codec():
    c = Canonicalize(24, "JPEG", 90)
    outs = [c(photo(i, size)) for i, size in enumerate([(48, 40), (100, 30), (16, 20)])]
    assert all(o.size == (24, 24) for o in outs)
    img = photo(0, (48, 40))
    buf = io.BytesIO()
    c.resize_crop(img).save(buf, format="JPEG", quality=90)
    assert np.array_equal(np.asarray(c(img)), np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))


def test_canny_finds_a_square_outline():
    arr = np.zeros((40, 40, 3), np.uint8)
    arr[10:30, 10:30] = 200
    edges = np.asarray(CannyEdges(85, 255)(Image.fromarray(arr)))[..., 0] > 0
    assert set(np.unique(np.asarray(CannyEdges(85, 255)(Image.fromarray(arr))))) <= {0, 255}
    assert edges[12:28, 12:28].sum() == 0 and edges[:5].sum() == 0  # flat areas have no edges
    assert edges[8:12, 12:28].any(axis=0).all() and edges[12:28, 8:12].any(axis=1).all()  # all four sides
    assert edges[28:32, 12:28].any(axis=0).all() and edges[12:28, 28:32].any(axis=1).all()


def test_hog_draws_lines_along_the_edges():
    """Vertical stripes (horizontal gradient) give vertical sticks through each cell's centre; rotating the
    image by 90 degrees rotates the sticks."""
    arr = np.zeros((32, 32), np.uint8)
    arr[:, ::4] = 255
    arr[:, 1::4] = 255
    hog = HOGImage(8, 9, short_side=0)
    for a, axis in ((arr, 0), (arr.T, 1)):
        out = np.asarray(hog(Image.fromarray(a).convert("RGB")), dtype=np.float64)[..., 0]
        cell = out[8:16, 8:16]
        along = cell[:, 3:5].sum() if axis == 0 else cell[3:5, :].sum()
        assert cell.sum() > 0 and along > 0.9 * cell.sum()


@pytest.mark.parametrize("kind", ["ideal", "butterworth"])
def test_frequency_filters_remove_their_band(kind):
    x = tensor(0, 64)
    f_low = FrequencyFilter(40, 224, kind, 4, highpass=False)
    f_high = FrequencyFilter(40, 224, kind, 4, highpass=True)
    lo, hi = f_low(x), f_high(x)
    for out in (lo, hi):
        assert out.shape == x.shape and out.dtype == x.dtype
        assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])  # grayscale
        assert out.min() >= 0 and out.max() <= 1
    r = f_low.radius(64, 64)
    assert abs(r - 40 * 64 / 224) < 1e-9  # the cut-off scales with the input
    d = radial_distance(64, 64)
    power = lambda img: torch.fft.fftshift(torch.fft.fft2(img[0].double())).abs() ** 2  # noqa: E731
    p_lo, p_hi = power(lo), power(hi)
    dc = d == 0
    if kind == "ideal":
        assert p_lo[d > r].sum() < 1e-12 * p_lo.sum()  # nothing above the cut-off
        assert p_hi[(d <= r) & ~dc].sum() < 1e-12 * p_hi.sum()  # nothing below it (but the DC offset)
    else:  # smooth: far beyond the cut-off is strongly attenuated, relative to the input
        gray = sum(c * x[i].double() for i, c in enumerate((0.299, 0.587, 0.114)))
        p_in = torch.fft.fftshift(torch.fft.fft2(gray)).abs() ** 2
        far, near = d > 2 * r, (d < r / 2) & ~dc
        gain = lambda p, m: (p[m].sum() / p.sum()) / (p_in[m].sum() / p_in.sum())  # noqa: E731
        assert gain(p_lo, far) < 0.05 and gain(p_hi, near) < 0.05
    assert torch.equal(f_low(x), lo)  # deterministic


def test_pixel_shuffle_fixed_and_random():
    x1, x2 = tensor(1), tensor(2)
    fixed = Shuffle(1, fixed=True, seed=0)
    # Fixed: one permutation for every image, read off from an image of distinct pixel ids.
    ids = torch.arange(32 * 32, dtype=torch.float32).reshape(1, 32, 32).expand(3, -1, -1)
    perm = fixed(ids)[0].flatten().long()
    for x in (x1, x2):
        out = fixed(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert torch.equal(out, x.reshape(3, -1)[:, perm].reshape(3, 32, 32))
    assert not torch.equal(Shuffle(1, True, seed=1)(ids), fixed(ids))  # the seed picks it
    rnd = Shuffle(1, fixed=False, seed=0)
    assert torch.equal(rnd(x1), rnd(x1.clone()))  # deterministic per image
    p1 = rnd(ids)[0].flatten()
    p2 = rnd(ids + 0.5)[0].flatten() - 0.5  # another image -> another permutation
    assert torch.equal(p1.sort().values, ids[0].flatten()) and not torch.equal(p1, p2)
    out = rnd(x1)  # a permutation: the same multiset of pixels
    assert torch.equal(out.reshape(3, -1).T.sort(0).values, x1.reshape(3, -1).T.sort(0).values)


@pytest.mark.parametrize("fixed", [True, False])
def test_patch_shuffle_preserves_the_patches(fixed):
    x = tensor(4, 32)
    out = Shuffle(8, fixed=fixed, seed=0)(x)
    assert out.shape == x.shape and not torch.equal(out, x)

    def patches(t):
        grid = range(0, 32, 8)
        return sorted(tuple(t[:, i:i + 8, j:j + 8].flatten().tolist()) for i in grid for j in grid)

    assert patches(out) == patches(x)
    with pytest.raises(ValueError, match="patch_size=5"):
        Shuffle(5, fixed, 0)(x)


def test_factory_stages_randaug_and_composition():
    a = create_anatomy_transforms(data_cfg("grayscale+lpf"))
    pil_fn, tensor_fn, keep = a
    assert a.names == ["grayscale", "lpf"] and pil_fn is grayscale and tensor_fn is not None and keep is False
    assert create_anatomy_transforms(data_cfg("mean_rgb+patch_shuffle_fixed", "data.anatomy.patch_size=8")).keep_randaug
    none = create_anatomy_transforms(load_config(None, ["data=toy"]).data)
    assert (none.pil, none.tensor, none.keep_randaug, none.names) == (None, None, True, [])
    assert [p.name for p in parse_transform("fixed_pixel_shuffle")] == ["pixel_shuffle_fixed"]  # ZYL's names


def test_bad_transforms_fail_at_config_load():
    with pytest.raises(ConfigError, match="unknown transformation 'blurry'"):
        data_cfg("grayscale+blurry")
    with pytest.raises(ConfigError, match="needs a depth model"):
        data_cfg("depth")
    with pytest.raises(ConfigError, match="appears twice"):
        data_cfg("lpf+lpf")
    with pytest.raises(ConfigError, match="patch_size=24 does not divide"):
        data_cfg("patch_shuffle_random", "data.anatomy.patch_size=24")
    with pytest.raises(ConfigError, match="jpeg_quality"):
        data_cfg("jpeg", "data.anatomy.jpeg_quality=0")


def test_eval_transform_hooks_and_train_compose():
    img = photo(5, (80, 60))
    plain = create_eval_transform(32)
    assert len(plain.transforms) == 3  # default unchanged: Resize, CenterCrop, ToTensor+Normalize
    a = create_anatomy_transforms(data_cfg("grayscale+pixel_shuffle_fixed"))
    hooked = create_eval_transform(32, pil_fn=a.pil, tensor_fn=a.tensor)
    out = hooked(img)
    assert out.shape == (3, 32, 32)
    # Same as doing it by hand: grayscale first, shuffle on the [0, 1] tensor, then normalise.
    by_hand = to_normalized_tensor().transforms[1](a.tensor(plain.transforms[2].transforms[0](
        plain.transforms[1](plain.transforms[0](grayscale(img))))))
    assert torch.allclose(out, by_hand)
    # compose(): RandAugment dropped when the transformation says so, tensor step inserted after ToTensor.
    marker = []
    randaug = lambda im: marker.append("randaug") or im  # noqa: E731
    b = create_anatomy_transforms(data_cfg("lpf"))
    view = b.compose([randaug], to_normalized_tensor(), randaug=randaug)
    view(img.resize((32, 32)))
    assert marker == []
    create_anatomy_transforms(data_cfg("grayscale")).compose([randaug], to_normalized_tensor(), randaug=randaug)(img)
    assert marker == ["randaug"]


def test_canonical_control_makes_size_and_codec_uniform_at_the_data_level():
    """Toy sources that differ in native size and JPEG quality: after data.transform=canonical every image
    reaches the network with one size and one codec history, in train and eval views alike."""
    from dsbias.data.sources.registry import create_sources

    src = ", ".join(f"{{name: {n}, kind: toy, bias: 1.0, signature: [size, jpeg]}}" for n in ("a", "b", "c"))
    cfg = load_config(None, [f"data.sources=[{src}]", "data.image_size=32", "data.transform=canonical",
                             "data.anatomy.canonical_size=40"])
    a = create_anatomy_transforms(cfg.data)
    readers = create_sources(cfg.data)
    native = {name: r.read("0")[0].size for name, r in readers.items()}
    assert len(set(native.values())) == 3  # they do differ natively
    outs = {name: a.pil(r.read("0")[0]) for name, r in readers.items()}
    assert {o.size for o in outs.values()} == {(40, 40)}
    view = create_eval_transform(32, pil_fn=a.pil, tensor_fn=a.tensor)
    assert {tuple(view(r.read("1")[0]).shape) for r in readers.values()} == {(3, 32, 32)}
