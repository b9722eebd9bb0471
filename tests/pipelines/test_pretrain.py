"""Pretraining runs with the real methods: exact resume (MAE masking, MoCo v3 momentum encoder), end to end."""

from __future__ import annotations

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
