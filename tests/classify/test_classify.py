"""Dataset classification parts: corruptions, augmentation levels, mixup, evaluation, loss check, presets, init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from dsbias.classify.evaluate import predict
from dsbias.classify.finetune import init_from_run
from dsbias.classify.loss_check import loss_trend
from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest
from dsbias.methods.registry import create_method
from dsbias.models.backbones import save_backbone

REPO = Path(__file__).resolve().parents[2]


TINY = ["data=toy", "data.per_source={train: 12, val: 6}", "data.image_size=32", "data.num_workers=0",
        "method=supervised", "model=convnext_atto_1_10_uniform"]


def test_eval_covers_every_image_once_and_does_not_depend_on_batch_size():
    cfg = load_config(None, TINY)
    manifest = build_manifest(cfg.data)
    method = create_method(cfg, 3)
    method.train()
    ds = MixedDataset.from_config(manifest, "val", method.create_eval_transform(), cfg.data)
    acc = Accelerator(cpu=True)
    a = predict(method, ds, acc, batch_size=1, num_workers=0, desc="val")
    b = predict(method, ds, acc, batch_size=7, num_workers=0, desc="val")
    assert method.training, "predict must restore training mode"
    assert np.array_equal(a.index, manifest.split_indices("val")) and np.array_equal(a.labels, ds.labels)
    assert np.array_equal(a.preds, b.preds)


def test_loss_trend_flags_a_flat_curve():
    down = [{"step": s, "loss": 1.1 - 0.01 * s} for s in range(1, 51)]
    flat = [{"step": s, "loss": 1.1 + 0.01 * (s % 3)} for s in range(1, 51)]
    early = [{"step": s, "loss": 1.0 + 0.001 * (s % 3)} for s in range(1, 51)]  # learnt before the first line
    assert loss_trend(down, 3)["loss_decreased"] is True
    assert loss_trend(flat, 3)["loss_decreased"] is False
    assert loss_trend(early, 3)["loss_decreased"] is True  # below ln 3 = 1.0986: it did learn
    assert loss_trend(down[:1], 3)["loss_decreased"] is None
    # eval lines and events are ignored; a step logged twice (resume) counts once
    noisy = [*down, {"step": 50, "eval/val_top1": 0.3}, {"event": "end", "step": 50, "loss": 9.0}]
    assert loss_trend(noisy, 3) == loss_trend(down, 3)


def test_init_from_run_loads_strictly_and_checks_the_model(tmp_path):
    cfg = load_config(None, TINY)
    src = create_method(cfg, 3)
    save_backbone(tmp_path, src.backbone, {"image_size": 32, "method": "mae"})
    dst = create_method(cfg, 3)
    init_from_run(dst.backbone, tmp_path)
    for (k, a), b in zip(src.backbone.state_dict().items(), dst.backbone.state_dict().values()):
        assert torch.equal(a, b), k
    other = create_method(load_config(None, [*TINY, "model=convnext_atto_1_10"]), 3)
    with pytest.raises(ValueError, match="backbone differs"):
        init_from_run(other.backbone, tmp_path)


def test_liu_he_recipe_runs_tiny_with_accumulation_and_resumes(tmp_path):
    from dsbias.pipelines.classify import classify

    cfg = load_config(REPO / "configs/classify/liu_he.yaml", [
        "data=toy", "data.per_source={train: 16, val: 8}", "data.image_size=32", "data.num_workers=0",
        "model=convnext_atto_1_10_uniform", "train.batch_size=8", "train.grad_accum=2", "train.samples=64",
        "train.log_every=1", "train.log_with=[]", "optim.warmup_samples=16", f"out={tmp_path}"])
    first = classify(cfg)  # full aug: RandAugment + mixup/cutmix on per-process batches of 4, 2 micro-steps
    assert first["steps"] == 8 and first["n_val"] == 24 and first["n_train"] == 48
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "backbone.safetensors").is_file()
    again = classify(cfg)  # the run is complete: rerunning evaluates the saved state again
    assert again["top1"] == first["top1"] and again["confusion"] == first["confusion"]


def test_two_fresh_runs_are_identical(tmp_path):
    from dsbias.pipelines.classify import classify
    from dsbias.runs import JsonlLog

    over = [*TINY, "train.batch_size=12", "train.samples=48", "train.log_every=1", "train.log_with=[]"]
    runs = [classify(load_config(REPO / "configs/classify/default.yaml", [*over, f"out={tmp_path / str(i)}"]))
            for i in range(2)]
    assert runs[0]["confusion"] == runs[1]["confusion"]
    losses = [[r["loss"] for r in JsonlLog(tmp_path / str(i) / "log.jsonl").read() if "loss" in r] for i in range(2)]
    assert losses[0] == losses[1] and len(losses[0]) == 4
