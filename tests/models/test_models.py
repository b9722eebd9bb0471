"""Architectures by name: the paper's models and the tiny ConvNeXt ladder build and train with 3 classes."""

from __future__ import annotations

import pytest
import timm
import torch

from dsbias.config import load_config
from dsbias.engine.optim import create_optimizer
from dsbias.methods.registry import create_method
from dsbias.models.backbones import create_backbone, load_backbone, save_backbone
from dsbias.models.config import ModelConfig

LADDER = {"convnext_atto_1_10_uniform": 7_373, "convnext_atto_1_10": 124_933, "convnext_atto_1_20": 470_663,
          "convnext_atto_2_20": 871_743, "convnext_atto": 3.4e6, "convnext_tiny": 27.8e6}


_BIG = {"alexnet": 64, "vgg16": 32, "resnet50": 32, "vit_small": 32, "convnext_tiny": 32}


ARCHS = [*(pytest.param(k, v, marks=pytest.mark.slow) for k, v in _BIG.items()),
         *((k, 32) for k in ("convnext_atto_1_10_uniform", "convnext_atto_1_10", "convnext_atto_1_20",
                             "convnext_atto_2_20"))]


@pytest.mark.parametrize("name,expected", LADDER.items())
def test_convnext_ladder_parameter_counts_match_the_notes(name, expected):
    with torch.device("meta"):  # counts only: no memory, no init time
        n = sum(p.numel() for p in timm.create_model(name, num_classes=3).parameters())
    assert abs(n - expected) / expected < 0.01, f"{name}: {n} parameters, notes say {expected}"


@pytest.mark.parametrize("preset,size", ARCHS)
def test_named_architecture_runs_one_train_step_with_3_classes(preset, size):
    cfg = load_config(None, ["data=toy", f"model={preset}", f"data.image_size={size}", "method=supervised",
                             "method.supervised.augment=full"])
    method = create_method(cfg, 3)
    assert method.head.out_features == 3
    opt = create_optimizer(cfg.optim, cfg.train, method)
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, size, size), torch.tensor([0, 1, 2, 0])
    before = method.head.weight.detach().clone()
    out = method((x, y, torch.arange(4)))
    assert out["logits"].shape == (4, 3) and torch.isfinite(out["loss"])
    out["loss"].backward()
    opt.step()
    assert not torch.equal(before, method.head.weight), "the head did not move"


def test_no_weight_decay_on_norms_and_biases():
    cfg = load_config(None, ["data=toy", "model=convnext_atto_1_10_uniform", "method=supervised"])
    method = create_method(cfg, 3)
    opt = create_optimizer(cfg.optim, cfg.train, method)
    names = {id(p): n for n, p in method.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            n = names[id(p)]
            if p.ndim <= 1:  # norms, biases, layer-scale gammas
                assert group["weight_decay"] == 0, n
            else:
                assert group["weight_decay"] == cfg.optim.weight_decay, n


@pytest.mark.parametrize("name", ["torchvision.mobilenet_v3_small", "convnext_atto_1_10_uniform"])
def test_backbone_export_round_trip(tmp_path, name):
    net = create_backbone(ModelConfig(name=name), 64)
    save_backbone(tmp_path, net, {"image_size": 64})
    back, meta = load_backbone(tmp_path)
    x = torch.randn(2, 3, 64, 64)
    net.eval()
    assert meta["dim"] == net.num_features
    torch.testing.assert_close(back(x), net(x))


def test_torchvision_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="image_size >= 63"):
        create_backbone(ModelConfig(name="torchvision.alexnet"), 32)
    with pytest.raises(ValueError, match="not a torchvision model"):
        create_backbone(ModelConfig(name="torchvision.nosuchnet"), 32)
