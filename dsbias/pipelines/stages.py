"""The stages every run shares: open the run dir, draw the data, export the backbone, extract its features."""

from __future__ import annotations

import logging
from typing import Any

from accelerate import Accelerator
from accelerate.utils import gather_object
from torch import nn

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest, decode_share, load_or_build_manifest
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD
from dsbias.engine.loop import create_accelerator
from dsbias.features.extract import extract_features
from dsbias.log import setup_logging
from dsbias.models.backbones import save_backbone
from dsbias.runs import JsonlLog, RunDir, provenance, sha256_file, write_json, write_text
from dsbias.typedconfig import ConfigError, diff_keys, dump_yaml, to_dict

logger = logging.getLogger(__name__)

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {"out", "train.log_every", "train.log_with", "train.extract", "train.stop_after",
                     "train.save_every", "data.num_workers", "extract.stop_after"}


def prepare_run(cfg: Config) -> tuple[RunDir, Accelerator]:
    """Create (or reopen) the run dir: check a resumed config, write config.yaml and provenance.json."""
    run = RunDir.at(cfg.out)
    accelerator = create_accelerator(cfg.train, run)
    setup_logging(accelerator.is_main_process)
    if accelerator.is_main_process:
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
    accelerator.wait_for_everyone()
    return run, accelerator


def build_data(cfg: Config, run: RunDir, accelerator: Accelerator) -> Manifest:
    """Draw the manifest on the main process (or reuse the run's), then load it everywhere.

    With several processes (and nodes) a new manifest is decoded by all of them: each decodes its share of the
    images the draw reads (:func:`decode_share`), the shares are gathered, and the main process builds the
    manifest a single process would, from them.
    """
    known = None
    if accelerator.num_processes > 1 and not cfg.data.manifest and not run.manifest.exists():
        shares = gather_object([decode_share(cfg.data, accelerator.process_index, accelerator.num_processes)])
        known = {k: v for share in shares for k, v in share.items()} if accelerator.is_main_process else None
    if accelerator.is_main_process:
        manifest = load_or_build_manifest(cfg.data, run.manifest, known)
        JsonlLog(run.log).write(event="manifest", sources=manifest.sources, obtained=manifest.summary["obtained"],
                                skipped=manifest.summary["skipped"])
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        manifest = Manifest.load(run.manifest)
    return manifest


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
