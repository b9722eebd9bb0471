"""Train and eval views of the supervised source classifier: timm's transforms + the fixed corruption.

Train (:func:`create_supervised_train_transform`): timm ``create_transform`` (RandomResizedCrop, flip,
RandAugment, random erasing) as in Liu & He's ConvNeXt recipe, or the eval view when ``augment.crop`` is off
(Table 4's "none"). Mixup/CutMix act on batches and live in the method (:mod:`dsbias.methods.supervised`).
Eval (:func:`create_supervised_eval_transform`): resize ``image_size / crop_pct`` (bicubic), center crop.
The Table 5 corruption (:class:`~dsbias.data.corrupt.Corruption`) goes in both, just before ToTensor.
"""

from __future__ import annotations

from collections.abc import Callable

from timm.data import create_transform
from torchvision import transforms as T

from dsbias.config import SupervisedConfig
from dsbias.data.corrupt import Corruption
from dsbias.data.transforms import IMAGENET_MEAN, IMAGENET_STD, create_eval_transform


def create_supervised_eval_transform(cfg: SupervisedConfig, image_size: int, crop_pct: float) -> T.Compose:
    """PIL RGB -> ``[3, image_size, image_size]``: the paper's eval view, then the corruption, then normalise."""
    base = create_eval_transform(image_size, crop_pct)
    *geometric, to_tensor = base.transforms  # Resize, CenterCrop | ToTensor + Normalize
    assert len(geometric) == 2, f"unexpected eval transform {base}"
    return T.Compose([*geometric, Corruption(cfg.corrupt), to_tensor])


def create_supervised_train_transform(cfg: SupervisedConfig, image_size: int, crop_pct: float) -> Callable:
    """PIL RGB -> ``[3, image_size, image_size]`` float tensor: one augmented, corrupted, normalised view."""
    aug = cfg.augment
    if not aug.crop:
        if aug.randaug or aug.reprob or aug.color_jitter:
            raise ValueError("method.supervised.augment: randaug/reprob/color_jitter need crop=true "
                             "(timm's training transform)")
        return create_supervised_eval_transform(cfg, image_size, crop_pct)
    primary, secondary, final = create_transform(
        image_size,
        is_training=True,
        scale=tuple(aug.scale),
        hflip=aug.hflip,
        color_jitter=aug.color_jitter or None,
        auto_augment=aug.randaug or None,
        interpolation=aug.interpolation,
        re_prob=aug.reprob,
        re_mode="pixel",
        re_count=1,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        separate=True,
    )
    # crop/flip | RandAugment / jitter | (corruption) | ToTensor, Normalize, RandomErasing
    return T.Compose([primary, secondary, Corruption(cfg.corrupt), final])
