"""``ssl/extract.py``: features from a finished run, or from any timm backbone with a local weights file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dsbias.config import config_from_cli, load_config
from dsbias.data.manifest import Manifest
from dsbias.engine import create_accelerator
from dsbias.log import setup_logging
from dsbias.models import create_backbone, load_backbone
from dsbias.runs import RunDir
from dsbias.train import build_data, features_of_run, prepare_run


def main(argv: list[str] | None = None) -> Path:
    """Parse ``--run DIR`` or ``[--config FILE] --out DIR [overrides]`` and extract features.

    With ``--run DIR`` the run's ``backbone.safetensors``, ``config.yaml`` and manifest are used and features
    are rewritten to ``DIR/features``. Otherwise the config's ``model`` (``model.weights`` = a local file) is
    applied to the config's data, in the run dir ``--out`` (the manifest is drawn there).
    """
    argv = sys.argv[1:] if argv is None else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--run", default=None)
    known, rest = pre.parse_known_args(argv)
    if known.run is not None:
        run = RunDir.at(known.run)
        if not run.config.is_file():
            sys.exit(f"error: {run.config} not found: --run needs a dsbias run dir")
        cfg = load_config(run.config)
        accelerator = create_accelerator(cfg, run)
        setup_logging(accelerator.is_main_process)
        manifest = Manifest.load(run.manifest)
        backbone, _ = load_backbone(run.root)
    else:
        cfg, _ = config_from_cli(rest, description="Extract features with a timm backbone and local weights")
        run, accelerator = prepare_run(cfg)
        manifest = build_data(cfg, run, accelerator)
        backbone = create_backbone(cfg.model, cfg.data.image_size)
    features_of_run(run, backbone, cfg, manifest, accelerator)
    if accelerator.is_main_process:
        print(f"features written to {run.features}\n  -> python probe/linear.py --features {run.root}\n"
              f"  -> python probe/knn.py --features {run.root}")
    return run.features
