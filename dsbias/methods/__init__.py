"""Methods: each one is an ``nn.Module`` whose ``forward(batch)`` returns a dict with ``"loss"``.

The one training engine (:mod:`dsbias.engine`) runs every method the same way and never branches on its
name. What a method provides:

- ``backbone``: the stock timm/torchvision model (``num_classes=0``: forward gives pooled features
  ``[B, D]``) that is exported to ``backbone.safetensors`` and probed;
- ``forward(batch) -> dict``: ``batch = (views, source_id, index)`` as collated by the DataLoader; returns
  ``"loss"`` (scalar) and optionally other scalars to log (e.g. ``"acc"``) and ``"logits"`` ``[B, S]``;
- ``create_train_transform() -> Callable[[PIL.Image], views]``: its training views;
- optionally ``after_step(step, total_steps)``: called after each optimiser step (MoCo's momentum update).

Methods are registered by name in :data:`METHODS` and built with :func:`create_method`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from dsbias.config import Config

# name -> "module:factory"; factories take (cfg, num_sources) and return the method module.
METHODS: dict[str, str] = {
    "mae": "dsbias.methods.mae:create_mae",
    "mocov3": "dsbias.methods.mocov3:create_mocov3",
    "supervised": "dsbias.methods.supervised:create_supervised",
}


def create_method(cfg: Config, num_sources: int) -> nn.Module:
    """Build the method ``cfg.method.name`` around a fresh backbone.

    Args:
        cfg: The run config.
        num_sources: Number of source labels S (used only by the supervised method).
    """
    if cfg.method.name not in METHODS:
        raise ValueError(f"method.name: unknown method '{cfg.method.name}'; known: {sorted(METHODS)}")
    module, factory = METHODS[cfg.method.name].split(":")
    create: Callable[[Config, int], Any] = getattr(importlib.import_module(module), factory)
    method = create(cfg, num_sources)
    for attr in ("backbone", "create_train_transform"):
        assert hasattr(method, attr), f"method {cfg.method.name} has no '{attr}'"
    return method
