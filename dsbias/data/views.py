"""Image transforms shared by every method: the deterministic evaluation view and normalisation.

Method-specific training views (MAE crops, MoCo v3 asymmetric pairs, the supervised recipe) live next to
their methods; they all end with the same :func:`to_normalized_tensor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_normalized_tensor(mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> T.Compose:
    """PIL RGB -> float tensor ``[3, H, W]``, normalised."""
    return T.Compose([T.ToTensor(), T.Normalize(mean, std)])


def create_eval_transform(
    image_size: int,
    crop_pct: float = 0.875,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    pil_fn: Callable[[Any], Any] | None = None,
    tensor_fn: Callable[[Any], Any] | None = None,
) -> T.Compose:
    """Liu & He's evaluation view: resize the shorter side to ``image_size / crop_pct`` (bicubic), center-crop.

    At 224 px this is the paper's Resize 256 + CenterCrop 224; one image at a time, no batch statistics.

    Args:
        image_size: Output side.
        crop_pct: Crop fraction.
        mean: Normalisation mean.
        std: Normalisation std.
        pil_fn: Applied first, to the decoded native image (a bias-anatomy transformation's ``pil`` stage,
            see :func:`dsbias.anatomy.create_anatomy_transforms`).
        tensor_fn: Applied to the ``[3, H, W]`` tensor in [0, 1] between ``ToTensor`` and ``Normalize``
            (the ``tensor`` stage).

    Returns:
        PIL RGB -> ``[3, image_size, image_size]`` float tensor. Without ``pil_fn``/``tensor_fn`` the steps are
        ``[Resize, CenterCrop, Compose(ToTensor, Normalize)]``.
    """
    to_tensor = to_normalized_tensor(mean, std)
    if tensor_fn is not None:
        to_tensor = T.Compose([to_tensor.transforms[0], tensor_fn, to_tensor.transforms[1]])
    return T.Compose([
        *([pil_fn] if pil_fn is not None else []),
        T.Resize(round(image_size / crop_pct), interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(image_size),
        to_tensor,
    ])
