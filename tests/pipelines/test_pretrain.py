"""Pretraining runs with the real methods: exact resume (MAE masking, MoCo v3 momentum encoder), end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from dsbias.config import load_config
from dsbias.features.store import load_features
from dsbias.pipelines.pretrain import main as pretrain
from dsbias.runs import JsonlLog

TINY = ["data=toy", "data.per_source={train: 8, val: 4}", "data.image_size=16", "data.num_workers=0",
        "model=vit_tiny", "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}",
        "method.mae.decoder_dim=16", "method.mae.decoder_heads=2", "method.mae.decoder_depth=1",
        "method.mocov3.proj_hidden_dim=32", "method.mocov3.pred_hidden_dim=32", "method.mocov3.proj_dim=16",
        "train.batch_size=4", "train.samples=24", "train.log_every=1", "train.log_with=[]", "train.extract=false",
        "optim.warmup_samples=8", "optim.blr=0.05"]


def _state(run_dir):
    """The method's full state as saved by Accelerate (momentum encoder and BN statistics included)."""
    (ckpt,) = (run_dir / "state").glob("step-*/model.safetensors")  # only the latest state is kept
    return safetensors.torch.load_file(str(ckpt))


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


@pytest.mark.parametrize("method", ["mae", "mocov3"])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, method):
    def run(out, *over):
        return pretrain(load_config(None, [*TINY, f"method={method}", f"out={out}", *over]))

    run(tmp_path / "a")
    assert run(tmp_path / "b", "train.save_every=2", "train.stop_after=3")["stopped_early"]
    assert run(tmp_path / "b", "train.save_every=2")["resumed_at"] == 2
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert a.keys() == b.keys()
    if method == "mocov3":
        assert any(k.startswith("momentum_backbone.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    curves = [[(r["step"], r["loss"]) for r in JsonlLog(d / "log.jsonl").read() if "loss" in r]
              for d in (tmp_path / "a", tmp_path / "b")]
    assert curves[0] == curves[1] and len(curves[0]) == 6
    exported = [safetensors.torch.load_file(str(d / "backbone.safetensors")) for d in (tmp_path / "a", tmp_path / "b")]
    for k in exported[0]:
        assert torch.equal(exported[0][k], exported[1][k]), k
