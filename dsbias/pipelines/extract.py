"""Feature-extraction mains: a frozen backbone named by a spec (``--backbone``: any timm, open_clip or Hugging Face
model, or a dsbias run), a finished run's own backbone (``--run``), or the config's ``model``."""

from __future__ import annotations

import json
from pathlib import Path

from accelerate.utils import set_seed

from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest
from dsbias.engine.loop import create_accelerator
from dsbias.errors import UserError
from dsbias.features.extract import extract_features
from dsbias.log import setup_logging
from dsbias.models.backbones import create_backbone
from dsbias.models.frozen import load_frozen
from dsbias.pipelines.rundir import holds_run_dir, on_main
from dsbias.pipelines.stages import build_data, features_of_run, init_backbone, prepare_run
from dsbias.runs import RunDir, lock_run, released_after


def extract_run(run_dir: str | Path) -> Path:
    """Rewrite ``RUN_DIR/features`` from the run's backbone (``--backbone run:RUN_DIR``), on the run's own data and
    manifest, with the run's ``config.yaml`` (and, for a pretraining run, its random-init control
    ``features_init/``)."""
    run = RunDir.at(run_dir)
    if not run.config.is_file():
        raise UserError(f"{run.config} not found: --run needs a dsbias run dir")
    cfg = load_config(run.config, [f"extract.backbone={json.dumps(f'run:{run.root}')}"])
    accelerator = create_accelerator(cfg.train, run)
    setup_logging(accelerator.is_main_process)
    with released_after(run):
        on_main(accelerator, lambda: lock_run(run))  # it rewrites the run's features: no run may train there now
        manifest = Manifest.load(run.manifest)
        fb = load_frozen(cfg.extract, cfg.train.seed)
        done = extract_features(fb.module, manifest, cfg.data, run.features, accelerator, settings=cfg.extract,
                                meta={**fb.record, "manifest_path": str(run.manifest)})
        if done and (cfg.method.name != "supervised" or run.init_features.exists()):  # pretraining has the control
            done = features_of_run(run, init_backbone(cfg, len(manifest.sources)), cfg, manifest, accelerator,
                                   init=True)
    _summary(run, accelerator.is_main_process, done)
    return run.features


@holds_run_dir
def extract_backbone(cfg: Config) -> Path:
    """Apply the frozen backbone ``cfg.extract.backbone`` to the config's data, in the run dir ``cfg.out``."""
    run, accelerator = prepare_run(cfg)
    manifest = build_data(cfg, run, accelerator)
    with accelerator.main_process_first():  # a hub download happens once; the others read the cache
        fb = load_frozen(cfg.extract, cfg.train.seed)
    done = extract_features(fb.module, manifest, cfg.data, run.features, accelerator, settings=cfg.extract,
                            preprocess=fb.preprocess, meta={**fb.record, "manifest_path": str(run.manifest)})
    _summary(run, accelerator.is_main_process, done)
    return run.features


@holds_run_dir
def extract_model(cfg: Config) -> Path:
    """Apply the config's ``model`` (``model.weights`` = a local file, else a random init) to its data, with
    dsbias's eval view, in the run dir ``cfg.out``."""
    run, accelerator = prepare_run(cfg)
    manifest = build_data(cfg, run, accelerator)
    set_seed(cfg.train.seed)  # a random init must be the same in every process and on a resumed rerun
    backbone = create_backbone(cfg.model, cfg.data.image_size)
    done = features_of_run(run, backbone, cfg, manifest, accelerator)
    _summary(run, accelerator.is_main_process, done)
    return run.features


def _summary(run: RunDir, main_process: bool, done: bool) -> None:
    if not main_process:
        return
    if not done:
        print(f"stopped before the end (extract.stop_after): rerun the same command to continue into {run.features}")
        return
    print(f"features written to {run.features}\n  -> python probe/linear.py --features {run.root}\n"
          f"  -> python probe/knn.py --features {run.root}")
