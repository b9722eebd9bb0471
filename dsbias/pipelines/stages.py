"""The stages every run shares: open the run dir, draw the data, export the backbone, extract its features."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed
from torch import nn

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest, load_or_build_manifest
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD
from dsbias.engine.checkpoint import latest_checkpoint
from dsbias.engine.loop import create_accelerator
from dsbias.errors import FailedOnMain, UserError
from dsbias.features import store
from dsbias.features.extract import extract_features
from dsbias.log import setup_logging
from dsbias.methods.registry import create_method
from dsbias.models.backbones import save_backbone
from dsbias.runs import JsonlLog, RunDir, lock_run, provenance, released_after, sha256_file, write_json, write_text
from dsbias.typedconfig import ConfigError, diff_keys, dump_yaml, to_dict

logger = logging.getLogger(__name__)

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {"out", "train.log_every", "train.log_with", "train.extract", "train.stop_after",
                     "train.save_every", "data.num_workers", "extract.stop_after"}


T = TypeVar("T")


def on_main(accelerator: Accelerator, fn: Callable[[], T]) -> T | None:
    """Run ``fn`` on the main process only; a :class:`UserError` there stops every process, not only the main
    one (the others would wait for it forever at the next collective call).

    Returns:
        ``fn()``'s result on the main process, None on the others.
    """
    box: list[Any] = [None]
    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = fn()
        except UserError as e:
            box[0], error = str(e), e
    if accelerator.num_processes > 1:
        broadcast_object_list(box)
    if error is not None:
        raise error
    if box[0] is not None:
        raise FailedOnMain(box[0])
    return result


def holds_run_dir(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a pipeline main ``main(cfg, ...)``: the run-dir lock :func:`prepare_run` takes is released when
    it returns or raises (a CLI process ends there anyway; a test or a study goes on to other runs)."""

    @functools.wraps(main)
    def wrapper(cfg: Config, *args: Any, **kwargs: Any) -> T:
        with released_after(RunDir.at(cfg.out)):
            return main(cfg, *args, **kwargs)

    return wrapper


def started(run: RunDir) -> bool:
    """Whether the run dir holds work a changed config would invalidate: a checkpoint, an exported backbone,
    features (finished or in parts)."""
    return latest_checkpoint(run) is not None or run.backbone_meta.exists() or any(
        (d / store.META).exists() or store.parts_dir(d).exists() for d in (run.features, run.init_features))


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for the keys that may not change on resume."""
    def value(d: Any, key: str) -> Any:
        for k in key.split("."):
            d = d.get(k) if isinstance(d, dict) else None
        return d

    return [f"{k}: {value(old, k)!r} -> {value(new, k)!r}" for k in diff_keys(old, new) if k not in RESUMABLE_CHANGES]


def _open_run_dir(run: RunDir, cfg: Config, processes: int, device: str) -> None:
    """Lock the run dir, check a resumed config, write ``config.yaml`` and ``provenance.json`` (main process)."""
    lock_run(run)
    if run.config.exists():
        changed = _changes(to_dict(load_config(run.config)), to_dict(cfg))
        if changed and started(run):
            raise ConfigError(f"{run.config}: this run dir was made with another config ({'; '.join(changed[:6])}) "
                              f"(resume with the same settings, give a new --out, or delete {run.root} to start "
                              "over)")
        if changed:
            # Nothing was trained or exported yet (the run stopped before its first checkpoint, e.g. on a wrong
            # data path): the corrected command starts over instead of being refused.
            logger.warning("%s: config changed before the first checkpoint (%s): starting over", run.root,
                           "; ".join(changed[:6]))
            for f in (run.manifest, run.manifest_summary, run.log):
                f.unlink(missing_ok=True)
    write_text(run.config, dump_yaml(cfg))
    write_json(run.provenance, {**provenance(), "processes": processes, "device": device})


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
    on_main(accelerator, lambda: _open_run_dir(run, cfg, accelerator.num_processes, str(accelerator.device)))
    accelerator.wait_for_everyone()
    return run, accelerator


def build_data(cfg: Config, run: RunDir, accelerator: Accelerator) -> Manifest:
    """Draw the manifest on the main process (or reuse the run's), then load it everywhere."""
    def draw() -> Manifest:
        manifest = load_or_build_manifest(cfg.data, run.manifest)
        JsonlLog(run.log).write(event="manifest", sources=manifest.sources, obtained=manifest.summary["obtained"],
                                skipped=manifest.summary["skipped"])
        return manifest

    manifest = on_main(accelerator, draw)
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
