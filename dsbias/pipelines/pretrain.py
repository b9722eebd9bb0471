"""Pretraining main: data -> method -> engine -> export -> features, without source labels.

Reads like a table of contents; the stages are shared with the other mains (:mod:`dsbias.pipelines.stages`).
Besides the trained features it writes those of the same backbone at initialisation (``features_init/``):
random convolutional and ViT features already see colour, blur and noise, so the probes report how much the
pretraining added over them (``gain_over_init``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from accelerate.utils import set_seed

from dsbias.config import Config
from dsbias.data.dataset import MixedDataset
from dsbias.engine.loop import train
from dsbias.features import store
from dsbias.methods.registry import create_method
from dsbias.pipelines.rundir import holds_run_dir
from dsbias.pipelines.stages import build_data, export_backbone, features_of_run, prepare_run
from dsbias.runs import RunDir

logger = logging.getLogger(__name__)


@holds_run_dir
def pretrain(cfg: Config) -> dict[str, Any]:
    """Pretrain ``cfg.method`` on the mix without source labels, export the backbone, extract features."""
    # ============ run dir ============
    run, accelerator = prepare_run(cfg)
    # ============ data ============
    manifest = build_data(cfg, run, accelerator)
    # ============ method ============
    set_seed(cfg.train.seed)  # the same initial weights in every run (reruns and resumes compare exactly)
    method = create_method(cfg, len(manifest.sources))
    at_init = copy.deepcopy(method.backbone) if cfg.train.extract else None  # the random-init control
    dataset = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
    # ============ training ============
    summary = train(cfg, method, dataset, run, accelerator)
    if summary.get("stopped_early"):
        return summary
    done = summary.get("already_done", False)  # a rerun of a finished run: keep what it wrote
    # ============ export ============
    if not (done and run.backbone_meta.exists()):
        export_backbone(run, method, cfg, manifest, accelerator)
    # ============ features ============
    # The control only once the trained features are complete (extract.stop_after may stop them); a finished
    # run's rerun keeps both.
    kept = done and all((d / store.META).exists() for d in (run.features, run.init_features))
    if cfg.train.extract and not kept and features_of_run(run, method.backbone, cfg, manifest, accelerator):
        features_of_run(run, at_init, cfg, manifest, accelerator, init=True)
    if accelerator.is_main_process:
        print(summary_text(cfg, run, summary))
    return summary


def summary_text(cfg: Config, run: RunDir, summary: dict[str, Any]) -> str:
    """The one-screen summary printed at the end of a run."""
    final = summary.get("final", {})
    lines = [
        f"== dsbias {cfg.method.name} on {len(cfg.data.sources)} source(s): {run.root}"
        + ("  (already finished: its recorded result)" if summary.get("already_done") else ""),
        f"   model {cfg.model.name}  image {cfg.data.image_size}px  batch {cfg.train.batch_size}  "
        f"steps {summary['steps']} ({summary['samples']} samples, resumed at {summary['resumed_at']})",
        f"   final loss {final.get('loss', float('nan')):.4f}  wall {summary['wall_s']:.1f}s  "
        f"{summary['img_per_s']:.0f} img/s",
        f"   backbone  {run.backbone_weights}",
    ]
    if cfg.train.extract:
        lines.append(f"   features  {run.features}  -> python probe/linear.py --features {run.root}")
        lines.append(f"   control   {run.init_features} (the same backbone at initialisation)")
    return "\n".join(lines)
