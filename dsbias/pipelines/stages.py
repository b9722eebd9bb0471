"""The stages every run shares: open the run dir, draw the data, export the backbone, extract its features."""

from __future__ import annotations

import logging
from typing import Any

from accelerate import Accelerator
from torch import nn

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest, load_or_build_manifest
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD
from dsbias.engine.loop import create_accelerator
from dsbias.engine.together import main_first
from dsbias.features.extract import extract_features
from dsbias.log import setup_logging
from dsbias.models.backbones import save_backbone
from dsbias.runs import JsonlLog, RunDir, provenance, sha256_file, write_json, write_text
from dsbias.typedconfig import ConfigError, diff_keys, dump_yaml, to_dict

logger = logging.getLogger(__name__)

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {"out", "train.log_every", "train.log_with", "train.extract", "train.stop_after",
                     "train.save_every", "data.num_workers", "extract.stop_after",
                     "train.compile", "train.channels_last"}


def prepare_run(cfg: Config) -> tuple[RunDir, Accelerator]:
    """Create (or reopen) the run dir: check a resumed config, write config.yaml and provenance.json."""
    run = RunDir.at(cfg.out)
    accelerator = create_accelerator(cfg.train, run)
    setup_logging(accelerator.is_main_process)

    def check_and_write() -> None:
        run.root.mkdir(parents=True, exist_ok=True)
        if run.config.exists():
            old = to_dict(load_config(run.config))
            changed = [k for k in diff_keys(old, to_dict(cfg)) if k not in RESUMABLE_CHANGES]
            if changed:
                keys = ", ".join(changed)
                raise ConfigError(f"{run.config}: this run dir was made with another config ({keys} differ); "
                                  "use a new --out or the same settings to resume")
        write_text(run.config, dump_yaml(cfg))
        write_json(run.provenance, {**provenance(), "processes": accelerator.num_processes,
                                    "device": str(accelerator.device)})

    main_first(accelerator, check_and_write, "checking the run dir")  # a config error stops every process
    return run, accelerator


def build_data(cfg: Config, run: RunDir, accelerator: Accelerator) -> Manifest:
    """Draw the manifest on the main process (or reuse the run's), then load it everywhere.

    The others wait in a patient collective (:func:`~dsbias.engine.together.main_first`: hours, not the
    default 10 minutes, for a build over millions of images), and a data error on the main process stops them
    all with its line.
    """

    def build() -> Manifest:
        manifest = load_or_build_manifest(cfg.data, run.manifest)
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
                    accelerator: Accelerator) -> bool:
    """Extract the run's features into ``run/features`` with provenance in ``meta.json``; False if
    ``extract.stop_after`` stopped it before the end."""
    return extract_features(backbone, manifest, cfg.data, run.features, accelerator, meta={
        **backbone_meta(cfg, manifest), "backbone": cfg.model.name, "manifest_path": str(run.manifest),
        "checkpoint_sha256": sha256_file(run.backbone_weights) if run.backbone_weights.exists() else None,
        "run": str(run.root)}, settings=cfg.extract)
