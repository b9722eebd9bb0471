"""Supervised source classification: a backbone + a linear head trained on the source labels (Liu & He).

The loss is the recipe's: label-smoothing cross-entropy, or, when Mixup/CutMix is on, timm's
``SoftTargetCrossEntropy`` on the mixed (and smoothed) targets that timm's ``Mixup`` makes inside ``forward``
in training mode. ``acc`` is measured against the un-mixed labels, so a pseudo-dataset run that memorises its
training images shows it in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from dsbias.data.config import DataConfig
from dsbias.methods.augment import create_supervised_eval_transform, create_supervised_train_transform
from dsbias.methods.base import MethodBase, MethodSettings
from dsbias.methods.config import SupervisedConfig
from dsbias.models.backbones import create_backbone
from dsbias.typedconfig import ConfigError


class SupervisedClassifier(MethodBase):
    """``backbone`` (images -> ``[B, D]``) and ``head`` (``[B, D]`` -> ``[B, S]`` source logits).

    Args:
        backbone: From :func:`dsbias.models.create_backbone` (``num_features`` = D).
        num_sources: Number of sources S.
        cfg: Supervised settings (label smoothing, augmentation, corruption).
        data: Data settings the views need (input size, eval crop, ``transform``).
    """

    def __init__(self, backbone: nn.Module, num_sources: int, cfg: SupervisedConfig, data: DataConfig) -> None:
        super().__init__()
        if num_sources < 2:
            raise ConfigError(f"supervised: need at least 2 sources, got {num_sources}")
        self.backbone = backbone
        self.head = nn.Linear(int(backbone.num_features), num_sources)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self.cfg = cfg
        self.data = data
        aug = cfg.augment
        self.mixup: Mixup | None = None
        if aug.mixup > 0 or aug.cutmix > 0:
            self.mixup = Mixup(
                mixup_alpha=aug.mixup, cutmix_alpha=aug.cutmix, prob=aug.mixup_prob, switch_prob=aug.switch_prob,
                mode=aug.mode, label_smoothing=cfg.label_smoothing, num_classes=num_sources,
            )
        self.soft_loss = SoftTargetCrossEntropy()
        self.hard_loss = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Source logits ``[B, S]`` of images ``[B, 3, H, W]``."""
        return self.head(self.backbone(x))

    def _mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] % 2:
            raise ConfigError(f"mixup/cutmix need an even per-process batch, got {x.shape[0]}: change "
                             "train.batch_size / (processes x train.grad_accum) or turn mixup and cutmix off")
        # timm's Mixup draws from numpy's global RNG, which the engine does not seed per step; draw its seed
        # from torch (seeded per step by the engine) so resume is exact, and restore numpy's state after.
        x = x.clone()  # timm mixes in place; never modify the caller's batch
        state = np.random.get_state()
        np.random.seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        try:
            return self.mixup(x, y)
        finally:
            np.random.set_state(state)

    def forward(self, batch: tuple[Any, torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``batch = (images [B, 3, H, W], source_id [B], index [B])`` -> loss, acc, logits."""
        x, y, _ = batch
        if self.training and self.mixup is not None:
            x, target = self._mix(x, y)  # target: [B, S] soft labels
            logits = self.logits(x)  # [B, S]
            loss = self.soft_loss(logits, target)
        else:
            logits = self.logits(x)
            loss = self.hard_loss(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return {"loss": loss, "acc": acc, "logits": logits.detach()}

    def create_train_transform(self) -> Callable:
        """Training view (timm transforms at the configured augmentation level + the fixed corruption)."""
        return create_supervised_train_transform(self.cfg, self.data)

    def create_eval_transform(self) -> Callable:
        """The paper's eval view (resize, center crop) + the same corruption and ``data.transform`` as training."""
        return create_supervised_eval_transform(self.cfg, self.data)


def create_supervised(cfg: MethodSettings, num_sources: int) -> SupervisedClassifier:
    """Build the source classifier around a fresh ``cfg.model`` backbone."""
    backbone = create_backbone(cfg.model, cfg.data.image_size)
    return SupervisedClassifier(backbone, num_sources, cfg.method.supervised, cfg.data)
