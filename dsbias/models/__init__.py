"""Backbones: stock timm / torchvision models (:mod:`.backbones`), exported as safetensors + a JSON recipe;
the tiny ConvNeXt ladder registered as timm models (:mod:`.convnext_tiny`); the ``model`` section (:mod:`.config`)."""
