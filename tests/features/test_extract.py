"""Extraction: the feature-file contract, and features that do not depend on the process count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import safetensors.torch
from conftest import train_tiny

from dsbias.features.store import load_features
from dsbias.pipelines.stages import export_backbone, features_of_run


def test_extraction_contract_and_two_processes_equal_one(tmp_path):
    cfg, run, acc, manifest, method, _ = train_tiny(tmp_path / "r", "train.samples=16")
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
