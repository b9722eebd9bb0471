"""Feature-extraction main: features of a finished run, or of a timm backbone with a local weights file."""

from __future__ import annotations

from pathlib import Path

from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest
from dsbias.engine.loop import create_accelerator
from dsbias.errors import UserError
from dsbias.log import setup_logging
from dsbias.models.backbones import create_backbone, load_backbone
from dsbias.pipelines.stages import build_data, features_of_run, init_backbone, prepare_run
from dsbias.runs import RunDir


def extract_run(run_dir: str | Path) -> Path:
    """Rewrite ``RUN_DIR/features`` from the run's ``backbone.safetensors``, ``config.yaml`` and manifest (and,
    for a pretraining run, its random-init control ``features_init/``)."""
    run = RunDir.at(run_dir)
    if not run.config.is_file():
        raise UserError(f"{run.config} not found: --run needs a dsbias run dir")
    cfg = load_config(run.config)
    accelerator = create_accelerator(cfg.train, run)
    setup_logging(accelerator.is_main_process)
    manifest = Manifest.load(run.manifest)
    backbone, _ = load_backbone(run.root)
    features_of_run(run, backbone, cfg, manifest, accelerator)
    if cfg.method.name != "supervised" or run.init_features.exists():  # pretraining runs have the control
        features_of_run(run, init_backbone(cfg, len(manifest.sources)), cfg, manifest, accelerator, init=True)
    _summary(run, accelerator.is_main_process)
    return run.features


def extract_model(cfg: Config) -> Path:
    """Apply the config's ``model`` (``model.weights`` = a local file) to its data, in the run dir ``cfg.out``."""
    run, accelerator = prepare_run(cfg)
    manifest = build_data(cfg, run, accelerator)
    backbone = create_backbone(cfg.model, cfg.data.image_size)
    features_of_run(run, backbone, cfg, manifest, accelerator)
    _summary(run, accelerator.is_main_process)
    return run.features


def _summary(run: RunDir, main_process: bool) -> None:
    if main_process:
        print(f"features written to {run.features}\n  -> python probe/linear.py --features {run.root}\n"
              f"  -> python probe/knn.py --features {run.root}")
