"""The stages every run shares: open the run dir, draw the data, export the backbone, extract its features."""

from __future__ import annotations

import logging
from typing import Any

from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from torch import nn

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.config import Config
from dsbias.data.manifest import Manifest, decode_share, load_or_build_manifest
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD
from dsbias.engine.loop import create_accelerator
from dsbias.engine.together import main_first
from dsbias.features.extract import extract_features
from dsbias.log import setup_logging
from dsbias.methods.registry import create_method
from dsbias.models.backbones import save_backbone
from dsbias.pipelines.rundir import on_main, open_run_dir
from dsbias.runs import JsonlLog, RunDir, sha256_file

logger = logging.getLogger(__name__)


def prepare_run(cfg: Config) -> tuple[RunDir, Accelerator]:
    """Create (or reopen) the run dir, locked by the main process for its life: check a resumed config, write
    config.yaml and provenance.json.

    Raises:
        RunLockedError: Another process runs in this dir.
        ConfigError: The dir holds a started run with another config.
    """
    run = RunDir.at(cfg.out)
    accelerator = create_accelerator(cfg.train, run)
    setup_logging(accelerator.is_main_process)
    # A config error or a held lock on the main process stops every process (engine.together.main_first).
    on_main(accelerator, lambda: open_run_dir(run, cfg, accelerator.num_processes, str(accelerator.device)),
            "opening the run dir")
    return run, accelerator


def build_data(cfg: Config, run: RunDir, accelerator: Accelerator) -> Manifest:
    """Draw the manifest on the main process (or reuse the run's), then load it everywhere.

    The others wait in a patient collective (:func:`~dsbias.engine.together.main_first`: hours, not the
    default 10 minutes, for a build over millions of images), and a data error on the main process stops them
    all with its line. With several processes (and nodes) a new manifest is decoded by all of them: each decodes
    its share of the images the draw reads (:func:`decode_share`), the shares are gathered, and the main process
    builds the manifest a single process would, from them.
    """
    known = None
    if accelerator.num_processes > 1 and not cfg.data.manifest and not run.manifest.exists():
        shares = gather_object([decode_share(cfg.data, accelerator.process_index, accelerator.num_processes)])
        known = {k: v for share in shares for k, v in share.items()} if accelerator.is_main_process else None

    def build() -> Manifest:
        manifest = load_or_build_manifest(cfg.data, run.manifest, known)
        JsonlLog(run.log).write(event="manifest", sources=manifest.sources, obtained=manifest.summary["obtained"],
                                skipped=manifest.summary["skipped"])
        return manifest

    manifest = main_first(accelerator, build, "building the manifest")
    return manifest if manifest is not None else Manifest.load(run.manifest)


def backbone_meta(cfg: Config, manifest: Manifest) -> dict[str, Any]:
    """What ``backbone.json`` records beside the model recipe: input, normalisation, sources, method.

    The normalisation is the one the views used: none (mean 0, std 1) for a ``data.transform`` that Zeng et al.
    feed unnormalised (``canny``, ``hog``, ``lpf``, ``hpf``), so features are extracted the way it was trained.
    """
    mean, std = create_anatomy_transforms(cfg.data).normalization(IMAGENET_MEAN, IMAGENET_STD)
    return {"image_size": cfg.data.image_size, "crop_pct": cfg.data.crop_pct, "mean": list(mean),
            "std": list(std), "pool": cfg.model.pool, "sources": manifest.sources, "method": cfg.method.name,
            "max_short_side": cfg.data.max_short_side}


def export_backbone(run: RunDir, method: nn.Module, cfg: Config, manifest: Manifest, accelerator: Accelerator) -> None:
    """Write ``backbone.safetensors`` + ``backbone.json`` from the main process."""
    if accelerator.is_main_process:
        save_backbone(run.root, method.backbone, backbone_meta(cfg, manifest))
    accelerator.wait_for_everyone()


def features_of_run(run: RunDir, backbone: nn.Module, cfg: Config, manifest: Manifest,
                    accelerator: Accelerator, init: bool = False) -> bool:
    """Extract the run's features into ``run/features`` with provenance in ``meta.json``; False if
    ``extract.stop_after`` stopped it before the end.

    Args:
        init: ``backbone`` is the run's backbone at initialisation: write the random-init control
            (``run/features_init``, same extraction) instead.
    """
    sha = sha256_file(run.backbone_weights) if run.backbone_weights.exists() and not init else None
    return extract_features(backbone, manifest, cfg.data, run.init_features if init else run.features, accelerator,
                            meta={**backbone_meta(cfg, manifest), "backbone": cfg.model.name,
                                  "manifest_path": str(run.manifest), "checkpoint_sha256": sha, "run": str(run.root),
                                  **({"control": "init", "init_seed": cfg.train.seed,
                                      "init_weights": cfg.model.weights} if init else {})},
                            settings=cfg.extract)


def init_backbone(cfg: Config, num_sources: int) -> nn.Module:
    """The run's backbone at initialisation: the method built exactly as its training run built it (same seed)."""
    set_seed(cfg.train.seed)
    return create_method(cfg, num_sources).backbone
