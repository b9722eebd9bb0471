"""Image transforms shared by every method: the deterministic evaluation view and normalisation.

Method-specific training views (MAE crops, MoCo v3 asymmetric pairs, the supervised recipe) live next to
their methods; they all end with the same :func:`to_normalized_tensor`.
"""

from __future__ import annotations

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
) -> T.Compose:
    """Liu & He's evaluation view: resize the shorter side to ``image_size / crop_pct`` (bicubic), center-crop.

    At 224 px this is the paper's Resize 256 + CenterCrop 224; one image at a time, no batch statistics.

    Returns:
        PIL RGB -> ``[3, image_size, image_size]`` float tensor.
    """
    return T.Compose([
        T.Resize(round(image_size / crop_pct), interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(image_size),
        to_normalized_tensor(mean, std),
    ])
