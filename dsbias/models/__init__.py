"""Backbones: stock timm / torchvision models, exported as safetensors + a JSON recipe."""

from dsbias.models.backbones import create_backbone, load_backbone, save_backbone

__all__ = ["create_backbone", "load_backbone", "save_backbone"]
