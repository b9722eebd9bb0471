"""Dataset classification main: train a source classifier end to end and report held-out top-1.

Liu & He's headline experiment: data -> supervised method -> engine (with val evaluation) -> report. Uses the
same run-dir contract and stages as pretraining (:mod:`dsbias.pipelines.stages`); the backbone is exported
too, so the classifier's features can be probed like any other. The classifier's pieces (evaluation,
fine-tuning init, the loss check) are in :mod:`dsbias.classify`.
"""

from __future__ import annotations

import logging
from typing import Any

from accelerate.utils import set_seed

from dsbias.classify.evaluate import Evaluator, Predictions, best_val, predict
from dsbias.classify.finetune import init_from_run
from dsbias.classify.loss_check import loss_trend
from dsbias.classify.underfit import underfit_check
from dsbias.config import Config, ConfigError
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import Manifest
from dsbias.engine.loop import train
from dsbias.methods.registry import create_method
from dsbias.pipelines.rundir import holds_run_dir
from dsbias.pipelines.stages import build_data, export_backbone, prepare_run
from dsbias.runs import JsonlLog, RunDir, save_npy, write_json
from dsbias.stats import classification_report, format_table, wilson_ci

logger = logging.getLogger(__name__)


@holds_run_dir
def classify(cfg: Config) -> dict[str, Any]:
    """Train ``cfg.model`` to name the source of each image; write and return ``metrics.json``'s contents."""
    if cfg.method.name != "supervised":
        raise ConfigError(f"method.name={cfg.method.name!r}: dataset classification trains method=supervised")
    # ============ run dir + data ============
    run, accelerator = prepare_run(cfg)
    manifest = build_data(cfg, run, accelerator)
    # ============ method ============
    set_seed(cfg.train.seed)  # the initial weights (and head) are a function of the seed: runs repeat exactly
    method = create_method(cfg, len(manifest.sources))
    if cfg.classify.init:
        init_from_run(method.backbone, cfg.classify.init)
    train_ds = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
    eval_tf = method.create_eval_transform()
    val_ds = MixedDataset.from_config(manifest, "val", eval_tf, cfg.data)
    bs, workers = cfg.classify.eval_batch_size, cfg.data.num_workers
    evaluator = Evaluator(val_ds, accelerator, bs, workers)
    # ============ training (val top-1 every classify.eval_every steps and at the end) ============
    summary = train(cfg, method, train_ds, run, accelerator, eval_fn=evaluator, eval_every=cfg.classify.eval_every)
    if summary.get("stopped_early"):
        return summary
    # ============ final evaluation ============
    val = evaluator.predictions
    if val is None or evaluator.step != summary["steps"]:
        val = predict(method, val_ds, accelerator, bs, workers, desc="val")
    train_pred = None
    if cfg.classify.train_top1:
        train_eval_ds = train_ds.with_transform(eval_tf)  # shares the decoded images with data.cache_decoded
        train_pred = predict(method, train_eval_ds, accelerator, bs, workers, desc="train (eval view)")
    # ============ export + report ============
    export_backbone(run, method, cfg, manifest, accelerator)
    params = sum(p.numel() for p in method.parameters())  # with the S-way head, as Liu & He count them
    metrics = build_metrics(cfg, run, manifest, val, train_pred, summary, params)
    if accelerator.is_main_process:
        # Per-image val probabilities (manifest order): the report's most/least confidently named images.
        save_npy(run.val_probs, val.probs)
        save_npy(run.val_index, val.index)
        write_json(run.metrics, metrics)
        print(summary_text(cfg, run, metrics))
    return metrics


def build_metrics(cfg: Config, run: RunDir, manifest: Manifest, val: Predictions, train_pred: Predictions | None,
                  summary: dict[str, Any], params: int | None = None) -> dict[str, Any]:
    """``metrics.json``: the val report (top-1, CI, chance, confusion...), train top-1, loss trend, warnings."""
    train_labels = manifest.labels()[manifest.split_indices("train")]
    groups = manifest.group_codes()[val.index] if manifest.has_groups else None
    report = classification_report(val.labels, val.preds, manifest.sources, train_labels=train_labels,
                                   groups=groups, seed=cfg.train.seed)
    records = JsonlLog(run.log).read()
    trend = loss_trend(records, len(manifest.sources), cfg.classify.loss_window, cfg.classify.loss_drop)
    warnings = []
    if trend["loss_decreased"] is False:
        warnings.append(f"training loss did not decrease (first {trend['loss_first']:.4f} -> last "
                        f"{trend['loss_last']:.4f}): the run failed to train (Liu & He's 'fail')")
    if cfg.data.pseudo and report["n"] and report["verdict"] == "separable":
        warnings.append("val accuracy is above chance on pseudo-datasets (splits of ONE source): "
                        "a leak in the pipeline, not dataset bias")
    train_top1 = train_pred.top1 if train_pred is not None else None
    underfit = underfit_check(train_top1, report["top1"], records, cfg.train.samples, cfg.model.name)
    warnings += [f"likely underfit: {r}" for r in underfit["reasons"]]
    aug, corrupt = cfg.method.supervised.augment, cfg.method.supervised.corrupt
    return {
        **report,
        "n_val": report["n"],
        # The final step's top1 above is the reported number; the best logged eval is chosen on val (optimistic).
        **best_val(records, report["top1"], summary["steps"]),
        "train_top1": train_top1,
        "train_ci95": (list(wilson_ci(int((train_pred.preds == train_pred.labels).sum()), train_pred.labels.size))
                       if train_pred is not None else None),
        "n_train": int(train_labels.size),
        **trend,
        "underfit": underfit,
        "warnings": warnings,
        "pseudo": cfg.data.pseudo,
        "model": cfg.model.name,
        "params": params,
        "init": cfg.classify.init,
        "augment": {"crop": aug.crop, "randaug": aug.randaug, "mixup": aug.mixup, "cutmix": aug.cutmix},
        "corrupt": {"kind": corrupt.kind, "strength": corrupt.strength},
        "steps": summary["steps"],
        "samples": summary["samples"],
        "wall_s": summary["wall_s"],
        "img_per_s": summary["img_per_s"],
        "final_train_loss": summary.get("final", {}).get("loss"),
        "final_train_acc": summary.get("final", {}).get("acc"),
    }


def summary_text(cfg: Config, run: RunDir, m: dict[str, Any]) -> str:
    """The one-screen summary: the val table, train vs val, loss trend, warnings, where things are."""
    corrupt = cfg.method.supervised.corrupt
    title = (f"== dsbias classify: {len(m['sources'])} sources, {cfg.model.name}, {cfg.data.image_size}px"
             + (f", corrupt {corrupt.kind} {corrupt.strength:g}" if corrupt.kind != "none" else "")
             + (f", init {cfg.classify.init}" if cfg.classify.init else ""))
    lines = [format_table(m, title=title + f"  [val, {m['n_val']} images]")]
    if m["train_top1"] is not None:
        lines.append(f"train top-1 {100 * m['train_top1']:.1f}% (eval view, {m['n_train']} images)  vs  "
                     f"val {100 * m['top1']:.1f}%" + ("   <- pseudo-datasets: val must be at chance" if m["pseudo"]
                                                      else ""))
    if m["loss_decreased"] is not None:
        lines.append(f"loss {m['loss_first']:.4f} -> {m['loss_last']:.4f} (drop {100 * m['loss_drop']:.0f}%)  "
                     f"decreased: {m['loss_decreased']}")
    if m.get("val_evals", 0) > 1:
        lines.append(f"best val top-1 {100 * m['best_val_top1']:.1f}% at step {m['best_val_step']} of "
                     f"{m['val_evals']} evaluations (chosen on val, optimistic; the reported top-1 is the final "
                     f"step's {100 * m['top1']:.1f}%)")
    lines.append(f"{m['steps']} steps, {m['samples']} samples, {m['wall_s']:.1f}s ({m['img_per_s']:.0f} img/s)")
    lines += [f"note: {n}" for n in m["notes"]]
    lines += [f"WARNING: {w}" for w in m["warnings"]]
    lines.append(f"-> {run.metrics}   backbone {run.backbone_weights}")
    return "\n".join(lines)
