"""Model errors a user can cause are one-line UserErrors, found when the model is built or loaded (issue 13,
item 5): an input too small for the network, a truncated or mismatched ``backbone.safetensors``."""

from __future__ import annotations

import pytest
from conftest import TINY_RUN

from dsbias.config import load_config
from dsbias.errors import MissingFileError, UserError
from dsbias.models.backbones import create_backbone, load_backbone, save_backbone
from dsbias.models.config import ModelConfig
from dsbias.typedconfig import ConfigError


@pytest.mark.parametrize("name,size,need", [("convnext_atto_1_10", 9, 32), ("convnext_atto_1_10", 16, 32),
                                            ("vit_tiny_patch16_224", 9, 16)])
def test_input_too_small_for_the_model(name, size, need):
    with pytest.raises(ConfigError, match=rf"data.image_size={size}: too small for model.name={name} .*>= {need}"):
        create_backbone(ModelConfig(name=name), size)


def test_small_input_the_model_copes_with_still_builds():
    assert create_backbone(ModelConfig(name="resnet18"), 9).num_features == 512  # below its stride, yet it runs


def test_corrupt_or_mismatched_backbone_files(tmp_path):
    cfg = load_config(None, TINY_RUN)
    net = create_backbone(cfg.model, 16)
    save_backbone(tmp_path, net, {"image_size": 16})
    weights = tmp_path / "backbone.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:100])
    with pytest.raises(UserError, match=r"backbone.safetensors is not a readable safetensors file .*re-export"):
        load_backbone(tmp_path)
    narrow = "model.kwargs={patch_size: 8, depth: 1, embed_dim: 16, num_heads: 2}"
    other = create_backbone(load_config(None, [*TINY_RUN, narrow]).model, 16)
    save_backbone(tmp_path / "other", other, {"image_size": 16})
    weights.write_bytes((tmp_path / "other" / "backbone.safetensors").read_bytes())
    with pytest.raises(UserError, match="backbone.safetensors does not match backbone.json"):
        load_backbone(tmp_path)
    (tmp_path / "backbone.json").write_text("{oops")
    with pytest.raises(UserError, match="backbone.json: not a backbone record"):
        load_backbone(tmp_path)
    with pytest.raises(MissingFileError, match="model.weights: .*nope.safetensors does not exist"):
        create_backbone(ModelConfig(name="resnet18", weights=str(tmp_path / "nope.safetensors")), 32)


@pytest.mark.parametrize("model,match", [
    (ModelConfig(name="convnext_nope"), r"model.name=convnext_nope: not a timm model"),
    (ModelConfig(name="vit_tiny_patch16_224", kwargs={"embed_dim": 20}), r"model.kwargs=.*AssertionError"),
    (ModelConfig(name="resnet18", kwargs={"foo": 1}), r"model.kwargs=\{'foo': 1\}: resnet18 cannot be built"),
])
def test_unknown_model_or_bad_kwargs(model, match):
    with pytest.raises(ConfigError, match=match):
        create_backbone(model, 32)
