"""Backbones: stock timm / torchvision models, exported as safetensors + a JSON recipe.

Importing this package also registers the tiny ConvNeXt ladder (:mod:`dsbias.models.convnext_tiny`) as timm
models, so ``model.name: convnext_atto_1_10_uniform`` works like any timm name.
"""

from dsbias.models import convnext_tiny  # noqa: F401  (registers the tiny ConvNeXts with timm)
from dsbias.models.backbones import create_backbone, load_backbone, save_backbone

__all__ = ["create_backbone", "load_backbone", "save_backbone"]
