"""torchvision backbones (``model.name: torchvision.<builder>``): the paper's AlexNet and VGG-16, and others.

Liu & He's architecture table (Table 3) includes AlexNet (77.8%) and VGG-16 (83.5%), which timm does not
provide. Any torchvision classification builder works (``torchvision.alexnet``, ``torchvision.vgg16``,
``torchvision.vgg16_bn``, ``torchvision.resnet50``...), always with random weights (``weights=None``).

Only the final 1000-way ``Linear`` is replaced by ``Identity``: AlexNet/VGG keep their fc6/fc7 MLP, so the
features are the 4096-d fc7 output and a new ``Linear(4096, S)`` head reproduces the classic architecture with
S classes. torchvision's ``AdaptiveAvgPool2d`` before the MLP makes small inputs work (VGG-16 down to 32 px;
AlexNet from 63 px: its three stride-2 max-pools need a 3x3 map to pool).
"""

from __future__ import annotations

from typing import Any

import torchvision
from torch import nn

from dsbias.models.config import ModelConfig
from dsbias.typedconfig import ConfigError

PREFIX = "torchvision."
MIN_SIZE = {"alexnet": 63}


def _strip_head(net: nn.Module, name: str) -> int:
    """Replace the final classification ``Linear`` by ``Identity`` in place; return its input width D."""
    for attr in ("fc", "classifier", "head", "heads"):
        parent = getattr(net, attr, None)
        if parent is None:
            continue
        if isinstance(parent, nn.Linear):
            setattr(net, attr, nn.Identity())
            return parent.in_features
        if isinstance(parent, nn.Sequential):
            last = len(parent) - 1
            while last >= 0 and not isinstance(parent[last], nn.Linear):
                last -= 1
            if last >= 0:
                dim = parent[last].in_features
                parent[last] = nn.Identity()
                return dim
    raise ValueError(f"model.name={PREFIX}{name}: cannot find its final Linear classifier to remove")


def _build(name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise ConfigError(f"model.name={PREFIX}{name}: not a torchvision model builder") from None
    net = builder(weights=None, **kwargs)
    net.num_features = _strip_head(net, name)
    return net


def create_torchvision_backbone(model: ModelConfig, image_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``torchvision.models.<name>(weights=None)`` without its final classifier layer.

    Args:
        model: Model config; ``name`` is ``torchvision.<builder>``, ``kwargs`` go to the builder.
        image_size: Network input side (checked against the architecture's minimum).

    Returns:
        The network (forward: ``[B, 3, H, W] -> [B, D]``, ``num_features = D``) and its export spec.
    """
    name = model.name[len(PREFIX):]
    if model.pool:
        raise ConfigError(f"model.pool={model.pool!r}: torchvision backbones keep their own pooling; leave it empty")
    if image_size < MIN_SIZE.get(name, 0):
        raise ConfigError(f"model.name={model.name}: input {image_size} px is too small "
                         f"(needs data.image_size >= {MIN_SIZE[name]})")
    net = _build(name, dict(model.kwargs))
    return net, {"library": "torchvision", "name": model.name, "kwargs": dict(model.kwargs)}


def rebuild_torchvision_backbone(meta: dict[str, Any]) -> nn.Module:
    """Rebuild the network described by a ``backbone.json`` (weights are loaded by the caller)."""
    return _build(meta["name"][len(PREFIX):], dict(meta["kwargs"]))
