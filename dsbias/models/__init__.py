"""Backbones: stock timm / torchvision models (:mod:`.backbones`), exported as safetensors + a JSON recipe;
the tiny ConvNeXt ladder registered as timm models (:mod:`.convnext_tiny`); the ``model`` section (:mod:`.config`);
frozen backbones named by a spec (:mod:`.spec`, :mod:`.frozen` and one loader per library) with their own
preprocessing (:mod:`.preprocess`) and pooling (:mod:`.pooling`); tiny saved stand-ins (:mod:`.tiny`)."""
