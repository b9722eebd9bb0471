"""Dataset classification parts: corruptions, augmentation levels, mixup, evaluation, loss check, presets, init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dsbias.config import load_config
from dsbias.data.manifest import build_manifest
from dsbias.methods.config import CorruptConfig
from dsbias.methods.corrupt import Corruption
from dsbias.methods.registry import create_method

REPO = Path(__file__).resolve().parents[2]


TINY = ["data=toy", "data.per_source={train: 12, val: 6}", "data.image_size=32", "data.num_workers=0",
        "method=supervised", "model=convnext_atto_1_10_uniform"]


def _img(seed: int, size: int = 96) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "configs/corrupt").glob("*.yaml")))
def test_corruptions_are_deterministic_and_keep_shape(preset):
    cfg = load_config(None, ["data=toy", f"method.supervised.corrupt={preset}"]).method.supervised.corrupt
    c = Corruption(cfg)
    torch.manual_seed(1)
    a = c(_img(0))
    torch.manual_seed(2)  # the caller's RNG state must not matter: seeded by the image
    b = c(_img(0))
    assert a.size == (96, 96) and a.mode == "RGB" and np.asarray(a).dtype == np.uint8
    assert np.array_equal(np.asarray(a), np.asarray(b))
    if cfg.kind != "none":
        assert not np.array_equal(np.asarray(a), np.asarray(_img(0))), "corruption changed nothing"


def test_random_corruptions_differ_between_images_and_leave_global_rng_alone():
    c = Corruption(CorruptConfig(kind="noise", strength=0.2))
    flat = Image.new("RGB", (32, 32), (128, 128, 128))
    other = Image.new("RGB", (32, 32), (129, 128, 128))
    d1 = np.asarray(c(flat), dtype=int) - 128
    d2 = np.asarray(c(other), dtype=int) - np.array([129, 128, 128])
    assert not np.array_equal(d1, d2)
    assert 0.15 * 255 < d1.std() < 0.25 * 255  # std 0.2 in [0, 1] units (a little clipping)
    jit = Corruption(CorruptConfig(kind="color_jitter", strength=1.0))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    jit(_img(3))
    assert torch.equal(torch.rand(3), expected)


def test_corruption_needs_a_strength():
    with pytest.raises(ValueError, match="strength"):
        Corruption(CorruptConfig(kind="blur", strength=0))


def test_augment_levels_compose_and_none_is_the_eval_view():
    cfg = load_config(None, [*TINY, "method.supervised.augment=none"])
    method = create_method(cfg, 3)
    assert method.mixup is None
    img = _img(5)
    torch.testing.assert_close(method.create_train_transform()(img), method.create_eval_transform()(img))
    full = create_method(load_config(None, [*TINY, "method.supervised.augment=full"]), 3)
    assert full.mixup is not None and "RandAugment" in repr(full.create_train_transform())
    crop = load_config(None, [*TINY, "method.supervised.augment=crop_randaug", "method.supervised.augment=crop"])
    assert crop.method.supervised.augment.randaug == "" and crop.method.supervised.augment.crop


def test_mixup_is_seeded_by_torch_and_restores_numpy():
    method = create_method(load_config(None, [*TINY, "method.supervised.augment=full"]), 3)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    losses = []
    for _ in range(2):
        torch.manual_seed(3)
        losses.append(method((x, y, torch.arange(4)))["loss"].item())
    assert losses[0] == losses[1]
    assert np.random.rand() == expected
    with pytest.raises(ValueError, match="even"):
        method((x[:3], y[:3], torch.arange(3)))


def test_anatomy_transform_reaches_both_views():
    gray = create_method(load_config(None, [*TINY, "method.supervised.augment=full", "data.transform=grayscale"]), 3)
    std, mean = torch.tensor([0.229, 0.224, 0.225])[:, None, None], torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    for view in (gray.create_train_transform(), gray.create_eval_transform()):
        x = view(_img(4)) * std + mean  # back to [0, 1]
        torch.testing.assert_close(x[0], x[1], atol=1e-5, rtol=0)
    lpf = create_method(load_config(None, [*TINY, "method.supervised.augment=full", "data.transform=lpf"]), 3)
    assert "RandAugment" not in repr(lpf.create_train_transform())  # Zeng et al. drop it for filters


def test_randaugment_posterize_zero_bits_does_not_crash():
    """timm asks Pillow for 0-bit posterize at high magnitude; Pillow >= 13 refuses (see dsbias.methods.augment)."""
    import numpy as np
    from PIL import Image
    from timm.data.auto_augment import AugmentOp

    import dsbias.methods.augment  # noqa: F401  (installs the fix)

    op = AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)  # -> keep 4 - 4 = 0 bits
    out = op(Image.new("RGB", (8, 8), (200, 100, 50)))
    assert np.asarray(out).max() == 0


@pytest.mark.parametrize("transform,flip,normalized", [("", True, True), ("canny", False, False),
                                                       ("hog", True, False), ("lpf", True, False),
                                                       ("grayscale+canny", False, False)])
def test_views_follow_the_reference_view_of_each_transformation(transform, flip, normalized):
    """Zeng et al.: edge maps get a random resized crop only; HOG and the filters keep the flip; none of these
    is normalised, in training or evaluation; and backbone.json records the normalisation actually used."""
    from dsbias.pipelines.stages import backbone_meta

    over = [*TINY, "method.supervised.augment=full", f"data.transform={transform}"]
    cfg = load_config(None, [*over, "data.anatomy.hog_short_side=0"])
    method = create_method(cfg, 3)
    train, evals = method.create_train_transform(), method.create_eval_transform()
    assert ("RandomHorizontalFlip" in repr(train)) is flip
    assert ("RandAugment" in repr(train)) is (transform == "")
    for view in (train, evals):
        x = view(_img(5))
        assert x.shape == (3, 32, 32)
        assert (float(x.min()) >= 0.0 and float(x.max()) <= 1.0) is not normalized  # raw [0, 1] input
    meta = backbone_meta(cfg, build_manifest(cfg.data))
    assert (meta["mean"], meta["std"]) == (([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if normalized
                                           else ([0.0] * 3, [1.0] * 3))
