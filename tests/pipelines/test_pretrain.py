"""Pretraining runs with the real methods: exact resume (MAE masking, MoCo v3 momentum encoder), end to end."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import TINY_SSL

from dsbias.config import load_config
from dsbias.pipelines.pretrain import pretrain
from dsbias.runs import JsonlLog


def _state(run_dir):
    """The method's full state as saved by Accelerate (momentum encoder and BN statistics included)."""
    (ckpt,) = (run_dir / "state").glob("step-*/model.safetensors")  # only the latest state is kept
    return safetensors.torch.load_file(str(ckpt))


@pytest.mark.parametrize("method", ["mae", "mocov3"])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, method):
    def run(out, *over):
        return pretrain(load_config(None, [*TINY_SSL, f"method={method}", f"out={out}", *over]))

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


def test_one_step_run_writes_its_init_features_and_gains_nothing(tmp_path):
    from dsbias.features.store import load_features
    from dsbias.pipelines.extract import extract_run
    from dsbias.probes.knn import run_knn
    from dsbias.probes.result import run_with_control
    from dsbias.runs import RunDir

    cfg = load_config(None, [*TINY_SSL, "method=mae", "train.extract=true", "data.per_source={train: 30, val: 30}",
                             "train.samples=4", "optim.blr=1.5e-4", f"out={tmp_path}"])
    assert pretrain(cfg)["steps"] == 1
    run = RunDir.at(tmp_path)
    fs, init = load_features(run.features, mmap=False), load_features(run.init_features, mmap=False)
    assert init.meta["control"] == "init" and init.meta["checkpoint_sha256"] is None
    assert np.array_equal(init.val.index, fs.val.index) and not np.array_equal(init.val.features, fs.val.features)
    res = run_with_control(fs, lambda f: run_knn(f, [5], progress=False))
    assert abs(res["gain_over_init"]) <= 0.05 and res["gain_ci95"][0] <= 0 <= res["gain_ci95"][1]
    extract_run(tmp_path)  # re-extraction rebuilds the same initial backbone from the seed
    again = load_features(run.init_features, mmap=False)
    np.testing.assert_allclose(again.val.features, init.val.features, rtol=1e-5, atol=1e-6)
