"""Train and eval views of the supervised source classifier: timm's transforms + the fixed corruption.

Train (:func:`create_supervised_train_transform`): timm ``create_transform`` (RandomResizedCrop, flip,
RandAugment, random erasing) as in Liu & He's ConvNeXt recipe, or the eval view when ``augment.crop`` is off
(Table 4's "none"). Mixup/CutMix act on batches and live in the method (:mod:`dsbias.methods.supervised`).
Eval (:func:`create_supervised_eval_transform`): resize ``image_size / crop_pct`` (bicubic), center crop.

Both views carry the same two train-AND-val modifications: the Table 5 corruption
(:class:`~dsbias.methods.corrupt.Corruption`, on the network-size PIL image just before ``ToTensor``) and the
bias-anatomy transformation ``data.transform`` (:mod:`dsbias.anatomy.transforms`: its ``pil`` stage first, its
``tensor`` stage after ``ToTensor``; RandAugment, the flip and the normalisation dropped where Zeng et al. drop
them, as the transformation declares).
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from timm.data import auto_augment, create_transform
from torchvision import transforms as T

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.data.config import DataConfig
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD, create_eval_transform
from dsbias.methods.config import SupervisedConfig
from dsbias.methods.corrupt import Corruption
from dsbias.typedconfig import ConfigError

_timm_posterize = auto_augment.posterize


def _posterize(img: Image.Image, bits_to_keep: int, **kwargs: object) -> Image.Image:
    """timm's posterize, also for 0 bits.

    At high magnitude timm's RandAugment (``rand-m9-mstd0.5-inc1``: magnitude noise reaches 10) asks to keep 0
    bits, meaning a black image; Pillow >= 13 raises ValueError for bits < 1 instead, which kills a training run
    at a random step. Returning the black image gives exactly what Pillow < 13 returned.
    """
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return _timm_posterize(img, bits_to_keep, **kwargs)


for _name, _op in list(auto_augment.NAME_TO_OP.items()):
    if _op is _timm_posterize:
        auto_augment.NAME_TO_OP[_name] = _posterize


def create_supervised_eval_transform(cfg: SupervisedConfig, data: DataConfig) -> T.Compose:
    """PIL RGB -> ``[3, image_size, image_size]``: the paper's eval view with the corruption and transformation."""
    anatomy = create_anatomy_transforms(data)
    base = create_eval_transform(data.image_size, data.crop_pct, *anatomy.normalization(IMAGENET_MEAN, IMAGENET_STD))
    *geometric, to_tensor = base.transforms  # Resize, CenterCrop | Compose(ToTensor, Normalize)
    assert len(geometric) == 2, f"unexpected eval transform {base}"
    return anatomy.compose([*geometric, Corruption(cfg.corrupt)], to_tensor)


def create_supervised_train_transform(cfg: SupervisedConfig, data: DataConfig) -> Callable:
    """PIL RGB -> ``[3, image_size, image_size]`` float tensor: one augmented, corrupted, normalised view."""
    aug = cfg.augment
    if not aug.crop:
        if aug.randaug or aug.reprob or aug.color_jitter:
            raise ConfigError("method.supervised.augment: randaug/reprob/color_jitter need crop=true "
                             "(timm's training transform)")
        return create_supervised_eval_transform(cfg, data)
    anatomy = create_anatomy_transforms(data)
    mean, std = anatomy.normalization(IMAGENET_MEAN, IMAGENET_STD)
    primary, secondary, final = create_transform(
        data.image_size,
        is_training=True,
        scale=tuple(aug.scale),
        hflip=aug.hflip if anatomy.flip else 0.0,
        color_jitter=aug.color_jitter or None,
        auto_augment=aug.randaug or None,
        interpolation=aug.interpolation,
        re_prob=aug.reprob,
        re_mode="pixel",
        re_count=1,
        mean=mean,
        std=std,
        separate=True,
    )
    # [anatomy pil] | crop/flip | RandAugment (or jitter) | corruption | ToTensor, [anatomy tensor], Normalize, erasing
    return anatomy.compose([primary, secondary, Corruption(cfg.corrupt)], final,
                           randaug=secondary if aug.randaug else None)
