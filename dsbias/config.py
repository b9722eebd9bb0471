"""The root config of a run, assembled from the sections each subsystem owns.

=============  ====================================  ==========================================
section        dataclass                             owner
=============  ====================================  ==========================================
``data``       :class:`~dsbias.data.config.DataConfig`          sources, counts, split, transform
``model``      :class:`~dsbias.models.config.ModelConfig`       the backbone
``method``     :class:`~dsbias.methods.config.MethodConfig`     MAE / MoCo v3 / supervised settings
``optim``      :class:`~dsbias.engine.config.OptimConfig`       optimiser and schedule
``train``      :class:`~dsbias.engine.config.TrainConfig`       length, batch, devices
``classify``   :class:`~dsbias.classify.config.ClassifyConfig`  dataset-classification runs
``extract``    :class:`~dsbias.features.config.ExtractConfig`   the frozen backbone to extract features of
=============  ====================================  ==========================================

:func:`load_config` merges defaults, a YAML file and overrides (:mod:`dsbias.typedconfig`) and checks the
result; the resolved tree is written to the run dir as ``config.yaml`` and loads back to an equal object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dsbias.classify.config import ClassifyConfig
from dsbias.data.config import DataConfig
from dsbias.data.sources.registry import check_sources
from dsbias.engine.config import OptimConfig, TrainConfig
from dsbias.features.config import ExtractConfig
from dsbias.methods.config import MethodConfig
from dsbias.models.config import ModelConfig
from dsbias.typedconfig import ConfigError, merge, parse_override, read_yaml

__all__ = ["Config", "ConfigError", "load_config", "validate"]


@dataclass
class Config:
    """The whole run: data, backbone, method, optimiser, training length and feature extraction."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    out: str = "out"


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: Config | None = None,
) -> Config:
    """Build a config from defaults, an optional YAML file and overrides.

    Args:
        path: YAML file with any of the sections (a section may be a preset name).
        overrides: ``a.b=value`` or ``group=name`` strings, applied in order.
        base: Start from this config instead of the defaults.

    Returns:
        The resolved, type-checked :class:`Config`.

    Raises:
        ConfigError: An unknown key, a wrong type, a missing preset or a failed cross-field check.
    """
    cfg = base if base is not None else Config()
    if path is not None:
        cfg = merge(cfg, read_yaml(path), str(path))
    for o in overrides:
        cfg = merge(cfg, parse_override(o), "command line")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Each section's own checks, and the source kinds against the source registry."""
    cfg.data.check()
    check_sources(cfg.data)
    cfg.train.check()
    cfg.method.supervised.augment.check()
    cfg.classify.check()
    cfg.extract.check()
