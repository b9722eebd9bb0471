"""What a method is, and the registry of methods by name.

A method is an ``nn.Module`` whose ``forward(batch)`` returns a dict with ``"loss"``; the one training engine
(:mod:`dsbias.engine.loop`) runs every method the same way and never branches on its name. The interface is
:class:`Method`; :class:`MethodBase` gives the two hooks their defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from dsbias.data.config import DataConfig
from dsbias.methods.config import MethodConfig
from dsbias.models.config import ModelConfig


class MethodSettings(Protocol):
    """The config sections a method is built from (:class:`dsbias.config.Config` has them)."""

    data: DataConfig
    model: ModelConfig
    method: MethodConfig


@runtime_checkable
class Method(Protocol):
    """What the engine, export and extraction use of a method.

    Attributes:
        backbone: The stock timm/torchvision model (``num_classes=0``: forward gives pooled features ``[B, D]``),
            exported to ``backbone.safetensors`` and probed.
    """

    backbone: nn.Module

    def __call__(self, batch: Any) -> dict[str, torch.Tensor]:
        """``batch = (views, source_id, index)`` as collated -> ``"loss"`` (scalar), optionally other scalars to
        log (``"acc"``) and ``"logits"`` ``[B, S]``."""
        ...

    def create_train_transform(self) -> Callable[[Any], Any]:
        """PIL RGB image -> the method's training view(s)."""
        ...

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW parameter groups (which parameters get weight decay)."""
        ...

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimiser step (MoCo's momentum update)."""
        ...


def default_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on norms, biases, tokens and position embeddings (MAE, ConvNeXt, Liu & He)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or "token" in name or "pos_embed" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class MethodBase(nn.Module):
    """Defaults of the :class:`Method` hooks: the usual no-decay rule, nothing after a step."""

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        return default_param_groups(self, weight_decay)

    def after_step(self, step: int, total_steps: int) -> None:
        del step, total_steps
