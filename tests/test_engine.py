"""The engine: schedule, data order, exact resume, and extraction that does not depend on process count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn
from torchvision import transforms as T

from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.engine import Plan, StepBatches, lr_at
from dsbias.features import load_features
from dsbias.models import create_backbone
from dsbias.runs import JsonlLog
from dsbias.train import build_data, export_backbone, features_of_run, prepare_run

TINY = ["data=toy", "data.per_source={train: 16, val: 4}", "data.image_size=16", "data.num_workers=0",
        "model.name=vit_tiny_patch16_224", "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}",
        "train.batch_size=8", "train.samples=64", "train.log_every=1", "train.log_with=[]",
        "optim.warmup_samples=16", "optim.blr=0.05"]


class NoisyClassifier(nn.Module):
    """Test method: random flips (data RNG) and dropout (model RNG), so exact resume is a real check."""

    def __init__(self, cfg, num_sources):
        super().__init__()
        self.backbone = create_backbone(cfg.model, cfg.data.image_size)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(self.backbone.num_features, num_sources)

    def create_train_transform(self):
        return T.Compose([T.RandomResizedCrop(16, scale=(0.5, 1)), T.RandomHorizontalFlip(), T.ToTensor()])

    def forward(self, batch):
        x, y, _ = batch
        logits = self.head(self.drop(self.backbone(x)))
        return {"loss": nn.functional.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def _run(out, *over):
    from dsbias.engine import train

    cfg = load_config(None, [*TINY, f"out={out}", *over])
    run, acc = prepare_run(cfg)
    manifest = build_data(cfg, run, acc)
    torch.manual_seed(0)
    method = NoisyClassifier(cfg, len(manifest.sources))
    ds = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
    summary = train(cfg, method, ds, run, acc)
    return cfg, run, acc, manifest, method, summary


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_step_batches_cover_each_epoch_once_across_processes_and_micro_batches():
    cfg = load_config(None, [*TINY, "train.batch_size=8", "train.grad_accum=2", "train.samples=40"])
    plan = Plan.make(cfg, 20, world=2)
    assert (plan.per_process_batch, plan.steps_per_epoch, plan.total_steps) == (2, 2, 5)
    per_rank = [list(StepBatches(plan, 20, 0, r, 0)) for r in range(2)]
    assert all(len(b) == 5 * 2 for b in per_rank)
    first_epoch = [p for r in range(2) for b in per_rank[r][:4] for (e, p) in b]
    assert len(first_epoch) == len(set(first_epoch)) == 16  # 2 steps x 8, no repeats
    resumed = list(StepBatches(plan, 20, 0, 1, start_step=3))
    assert resumed == per_rank[1][6:]


def test_batch_not_divisible_is_a_config_error():
    from dsbias.config import ConfigError

    cfg = load_config(None, [*TINY, "train.batch_size=9", "train.grad_accum=2"])
    with pytest.raises(ConfigError, match="train.batch_size=9"):
        Plan.make(cfg, 20, world=1)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    *_, straight, s1 = _run(tmp_path / "a", "train.save_every=2")
    _, run_b, *_ , s2 = _run(tmp_path / "b", "train.save_every=3", "train.stop_after=5")
    assert s2["stopped_early"] and s2["steps"] == 5
    *_, resumed, s3 = _run(tmp_path / "b", "train.save_every=3")  # rerun into the same dir: resumes
    assert s3["resumed_at"] == 3
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    loss_a = [(r["step"], r["loss"]) for r in JsonlLog(tmp_path / "a" / "log.jsonl").read() if "loss" in r]
    loss_b = [(r["step"], r["loss"]) for r in JsonlLog(run_b.log).read() if "loss" in r]
    assert loss_a == loss_b and len(loss_a) == 8


def test_rerun_with_other_config_refuses(tmp_path):
    _run(tmp_path / "a", "train.samples=16")
    from dsbias.config import ConfigError

    with pytest.raises(ConfigError, match="optim.blr"):
        _run(tmp_path / "a", "train.samples=16", "optim.blr=0.1")


def test_extraction_contract_and_two_processes_equal_one(tmp_path):
    cfg, run, acc, manifest, method, _ = _run(tmp_path / "r", "train.samples=16")
    export_backbone(run, method, cfg, manifest, acc)
    features_of_run(run, method.backbone, cfg, manifest, acc)
    one = load_features(run.root, mmap=False)
    assert one.train.features.shape == (48, 32) and len(one.val) == 12
    assert one.train.index.tolist() == manifest.split_indices("train").tolist()
    assert one.meta["checkpoint_sha256"] and one.meta["sources"] == ["alpha", "beta", "gamma"]
    # Features equal the exported backbone applied to the eval view of each manifest row.
    sd = safetensors.torch.load_file(str(run.backbone_weights))
    assert set(sd) == set(method.backbone.state_dict())

    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    # The README's multi-process CPU command (`--cpu --num_processes 2` would silently run one process).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--main_process_port", "29533", "ssl/extract.py", "--run", str(run.root)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    two = load_features(run.root, mmap=False)
    for split in ("train", "val"):
        a, b = getattr(one, split), getattr(two, split)
        np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-5)
        assert np.array_equal(a.index, b.index) and np.array_equal(a.labels, b.labels)
