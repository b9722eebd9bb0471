"""The ``model`` section: which backbone (:mod:`dsbias.models.backbones`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """The backbone: a stock timm (or torchvision) model.

    Attributes:
        name: timm model name (or ``torchvision.<name>``).
        kwargs: Extra keyword arguments for ``timm.create_model`` (e.g. ``img_size``, ``patch_size``).
        pool: timm ``global_pool`` (``token`` = cls token, ``avg``...); empty keeps the model default.
        weights: Optional local weights file to initialise from (never downloaded).
    """

    name: str = "vit_tiny_patch16_224"
    kwargs: dict[str, Any] = field(default_factory=dict)
    pool: str = ""
    weights: str | None = None

