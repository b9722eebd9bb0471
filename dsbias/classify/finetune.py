"""Fine-tuning: initialise the classifier's backbone from a pretraining run (``classify.init=RUN_DIR``).

So MAE / MoCo v3 features can be probed end to end as well as linearly. The run's ``backbone.json`` must
describe the same network the config builds (library, name, kwargs), and its weights load strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from dsbias.models.backbones import load_backbone
from dsbias.typedconfig import ConfigError

logger = logging.getLogger(__name__)


def init_from_run(backbone: nn.Module, run_dir: str | Path) -> None:
    """Load ``RUN_DIR/backbone.safetensors`` into ``backbone`` (strict), after checking the recipes match.

    Raises:
        FileNotFoundError: The run dir has no exported backbone.
        ValueError: The exported backbone is another model (names what differs and how to match it).
    """
    pretrained, meta = load_backbone(run_dir)
    want = {k: meta[k] for k in ("library", "name", "kwargs")}
    have = dict(backbone.dsbias_spec)
    if want != have:
        diff = ", ".join(f"{k}: run has {want[k]!r}, config builds {have.get(k)!r}" for k in want
                         if want[k] != have.get(k))
        raise ConfigError(f"classify.init={run_dir}: backbone differs ({diff}); set model.name / model.kwargs / "
                         "model.pool / data.image_size to match the pretraining run")
    backbone.load_state_dict(pretrained.state_dict(), strict=True)
    logger.info("backbone initialised from %s (%s, trained by %s)", run_dir, meta["name"], meta.get("method"))
