"""Pretraining runs with the real methods: exact resume (MAE masking, MoCo v3 momentum encoder), end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_SSL

from dsbias.features.store import load_features


def _launch(out, *args, processes=1):
    """``accelerate launch ssl/pretrain.py`` as a user runs it (the README's multi-process CPU command)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    multi = ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", "29541"] if processes > 1 else []
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *multi, "ssl/pretrain.py", "--out", str(out),
           "train.log_with=[]", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def _linear_separability(run_dir):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fs = load_features(run_dir, mmap=False)
    scale = StandardScaler().fit(fs.train.features)
    clf = LogisticRegression(max_iter=2000).fit(scale.transform(fs.train.features), fs.train.labels)
    return clf.score(scale.transform(fs.val.features), fs.val.labels), 1 / len(fs.sources)


@pytest.mark.slow
def test_default_mae_run_learns_separable_features(tmp_path):
    # The default recipe (configs/pretrain.yaml) on fewer images and samples.
    out = _launch(tmp_path / "mae", "data.per_source={train: 400, val: 100}", "train.samples=8000")
    assert "backbone" in out and "features" in out  # the end-of-run summary
    from dsbias.models.backbones import load_backbone

    load_backbone(tmp_path / "mae")  # strict
    acc, chance = _linear_separability(tmp_path / "mae")
    assert acc > chance + 0.1, (acc, chance)  # 54-58% at full size; a random ViT of this shape gives ~54%


@pytest.mark.slow
def test_mocov3_two_processes_on_cpu(tmp_path):
    tiny = [a for a in TINY_SSL if not a.startswith("train.")]
    _launch(tmp_path / "moco", "method=mocov3", "optim=mocov3", *tiny, "train.batch_size=8", "train.samples=32",
            processes=2)
    fs = load_features(tmp_path / "moco", mmap=False)
    assert fs.train.features.shape == (24, 32) and np.isfinite(fs.train.features).all()
    assert json.loads((tmp_path / "moco" / "provenance.json").read_text())["processes"] == 2
