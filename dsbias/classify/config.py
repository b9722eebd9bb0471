"""The ``classify`` section: the dataset-classification run around the supervised method."""

from __future__ import annotations

from dataclasses import dataclass

from dsbias.typedconfig import ConfigError


@dataclass
class ClassifyConfig:
    """The dataset-classification run (``probe/classify.py``) around the supervised method.

    Attributes:
        init: Pretraining run dir whose ``backbone.safetensors`` initialises the backbone (fine-tuning); the
            run's ``backbone.json`` must name the same model and kwargs as ``model``.
        eval_every: Optimiser steps between val evaluations during training (0: only at the end).
        eval_batch_size: Images per forward at evaluation (eval mode: no batch statistics, so any size).
        train_top1: Also evaluate the final model on the train split (the memorisation number).
        loss_window: Fraction of the logged steps at each end whose mean losses are compared.
        loss_drop: Minimum relative drop of the mean loss from the start (the first window, or ``ln S`` if
            higher) to the last window; a smaller drop flags the run (``loss_decreased: false``), the
            pseudo-dataset "fail" of Liu & He Table 6.
    """

    init: str | None = None
    eval_every: int = 0
    eval_batch_size: int = 256
    train_top1: bool = True
    loss_window: float = 0.1
    loss_drop: float = 0.02

    def check(self) -> None:
        """Cross-field checks."""
        if not 0 < self.loss_window <= 0.5:
            raise ConfigError(f"classify.loss_window={self.loss_window}: must be in (0, 0.5]")
        if self.eval_batch_size < 1 or self.eval_every < 0:
            raise ConfigError("classify.eval_batch_size must be >= 1 and classify.eval_every >= 0")
