"""Optimiser and learning-rate schedule: AdamW over the method's parameter groups; the lr is a pure function
of the step (linear warmup, then half-cycle cosine), so there is no scheduler state to save or lose."""

from __future__ import annotations

import math

import torch

from dsbias.engine.config import OptimConfig, TrainConfig
from dsbias.methods.base import Method
from dsbias.typedconfig import ConfigError


def learning_rate(optim: OptimConfig, train: TrainConfig) -> float:
    """The peak learning rate: ``optim.lr`` if set, else ``blr * global_batch / 256`` (Goyal et al.)."""
    return optim.lr if optim.lr is not None else optim.blr * train.batch_size / 256


def lr_at(step: int, total: int, peak: float, warmup: int, min_lr: float) -> float:
    """Linear warmup over ``warmup`` steps, then half-cycle cosine from ``peak`` to ``min_lr`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + (peak - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))



def create_optimizer(optim: OptimConfig, train: TrainConfig, method: Method) -> torch.optim.Optimizer:
    """AdamW over the method's parameter groups (its own no-decay rule)."""
    if optim.name != "adamw":
        raise ConfigError(f"optim.name={optim.name!r}: only adamw is implemented")
    groups = method.param_groups(optim.weight_decay)
    return torch.optim.AdamW(groups, lr=learning_rate(optim, train), betas=tuple(optim.betas))  # type: ignore[arg-type]
