"""Bias anatomy: what carries the dataset signal (transformations, shortcut baselines, leakage audit)."""

from dsbias.anatomy.transforms import (
    TRANSFORMS,
    AnatomyTransforms,
    create_anatomy_transforms,
    insert_after_to_tensor,
    parse_transform,
)

__all__ = ["TRANSFORMS", "AnatomyTransforms", "create_anatomy_transforms", "insert_after_to_tensor",
           "parse_transform"]
