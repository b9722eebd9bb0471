"""Engine settings for accelerators, checked on CPU: compile, channels-last, TF32, and resume across a
different process count."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import train_tiny

from dsbias.engine import loop
from dsbias.engine.config import TrainConfig
from dsbias.errors import UserError


def test_compile_is_used_and_checkpoints_keep_plain_keys(tmp_path, monkeypatch):
    compiled = []
    real = torch.compile

    def eager_compile(model, **kwargs):  # real dynamo tracing, no inductor code generation (slow on CPU)
        compiled.append(model)
        return real(model, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    _, run, *_, method, summary = train_tiny(tmp_path, "train.compile=true", "train.samples=16")
    assert len(compiled) == 1 and summary["steps"] == 2
    from safetensors.torch import load_file

    saved = load_file(next((run.state / "step-0000002").glob("model*.safetensors")))
    assert saved and not any("_orig_mod" in k for k in saved)
    assert set(saved) == set(method.state_dict())


def test_channels_last_trains_the_same_network(tmp_path):
    *_, plain, _ = train_tiny(tmp_path / "a", "train.samples=16")
    *_, cl, _ = train_tiny(tmp_path / "b", "train.samples=16", "train.channels_last=true")
    for (k, a), (_, b) in zip(plain.state_dict().items(), cl.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_cuda_settings_turn_on_tf32_and_the_cudnn_autotuner(monkeypatch):
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32)
    try:
        loop.configure_cuda(TrainConfig(tf32=True))
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.benchmark
        loop.configure_cuda(TrainConfig(tf32=False))
        assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = before[1], before[2]


def test_resume_with_another_process_count_is_refused_with_one_line(tmp_path):
    _, run, *_ = train_tiny(tmp_path, "train.samples=16")
    latest = json.loads((run.state / "latest.json").read_text())
    assert latest["processes"] == 1
    (run.state / "latest.json").write_text(json.dumps({**latest, "processes": 2}))  # as 2 processes leave it
    with pytest.raises(UserError, match=r"checkpointed by 2 process\(es\), this launch has 1; resume with "
                                        r"--num_processes 2"):
        train_tiny(tmp_path, "train.samples=16")


def test_a_nan_loss_stops_training_with_one_line_before_any_checkpoint(tmp_path, monkeypatch):
    import conftest

    real = conftest.noisy_method

    def nan_method(cfg, n):
        method = real(cfg, n)
        forward = method.forward
        method.forward = lambda batch: {**forward(batch), "loss": forward(batch)["loss"] * float("nan")}
        return method

    monkeypatch.setattr(conftest, "noisy_method", nan_method)
    with pytest.raises(UserError, match="training diverged.*from step 0 .checked at step 1"):
        train_tiny(tmp_path, "train.samples=16", "train.save_every=1")
    assert not list((tmp_path / "state").glob("step-*"))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_cuda_training_in_each_precision_with_channels_last(tmp_path, precision):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    *_, method, summary = train_tiny(tmp_path, f'train.mixed_precision="{precision}"', "train.channels_last=true")
    assert next(method.parameters()).is_cuda and summary["steps"] == 8
    assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.benchmark
    assert all(torch.isfinite(p).all() for p in method.parameters())
