"""Bring your own backbone: features from ssl/extract.py equal the library's own model on its own preprocessing,
meta.json records that preprocessing, the probes run on the result; missing extras, offline models, pooling and
layers fail in one line. Every model is made here, tiny, and saved the way users get them (no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch
import timm
import torch
from conftest import extract_cli, manifest_images

from dsbias.features.store import load_features
from dsbias.models import tiny

open_clip = pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")


def _direct(images, preprocess, forward) -> np.ndarray:
    with torch.no_grad():
        return forward(torch.stack([preprocess(im) for im in images])).float().numpy()


def _assert_features(out, preprocess, forward) -> dict:
    fs = load_features(out, mmap=False)
    for split in ("train", "val"):
        ref = _direct(manifest_images(out, split), preprocess, forward)
        np.testing.assert_allclose(getattr(fs, split).features, ref, rtol=1e-4, atol=1e-5)
    return fs.meta


def _error_line(capsys) -> str:
    """The one ``error:`` line on stderr (log lines may come before it)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


def _probes_run(out) -> None:
    from dsbias.cli.knn import main as knn
    from dsbias.cli.linear import main as linear

    assert knn(["--features", str(out)]) == 0 and linear(["--features", str(out)]) == 0
    assert (out / "features" / "probe_knn.json").is_file() and (out / "features" / "probe_linear.json").is_file()


def test_timm_safetensors_equals_timm_forward(tmp_path):
    entry = tiny.save_tiny_timm(tmp_path / "m")
    out = tmp_path / "x"
    assert extract_cli(out, "--backbone", entry["backbone"], "--weights", entry["weights"],
                       f"extract.kwargs={json.dumps(entry['kwargs'])}") == 0
    net = timm.create_model("vit_tiny_patch16_224", num_classes=0, **tiny.TIMM_KWARGS).eval()
    state = safetensors.torch.load_file(entry["weights"])
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    data_cfg = timm.data.resolve_data_config({"input_size": (3, 32, 32)}, model=net)
    tf = timm.data.create_transform(**data_cfg, is_training=False)
    meta = _assert_features(out, tf, net)
    pre = meta["preprocess"]
    assert pre["steps"] == [repr(t) for t in tf.transforms] and pre["crop_pct"] == data_cfg["crop_pct"]
    assert meta["mean"] == list(data_cfg["mean"]) and meta["image_size"] == 32 and meta["pooling"] == "cls"
    assert meta["checkpoint_sha256"] and meta["weights"] == entry["weights"] and meta["layer"] == "final"
    _probes_run(out)


def test_open_clip_local_dir_keeps_its_preprocessing_and_file_equals_tower(tmp_path):
    file_entry, dir_entry = tiny.save_tiny_openclip(tmp_path / "oc")
    out = tmp_path / "dir"
    assert extract_cli(out, "--backbone", dir_entry["backbone"]) == 0
    model, _, pre = open_clip.create_model_and_transforms(dir_entry["backbone"][len("open_clip:"):])
    meta = _assert_features(out, pre, model.eval().visual)
    # open_clip #1068: a model loaded from a path must keep the preprocessing it was saved with, not the defaults.
    assert meta["mean"] == tiny.OPENCLIP_PREPROCESS["mean"] and meta["preprocess"]["resize_mode"] == "squash"
    assert meta["preprocess"]["interpolation"] == "bilinear" and meta["dim"] == tiny.OPENCLIP_CFG["embed_dim"]
    _probes_run(out)

    out = tmp_path / "file"
    assert extract_cli(out, "--backbone", file_entry["backbone"], "--weights", file_entry["weights"]) == 0
    model, _, pre = open_clip.create_model_and_transforms("tiny-clip", pretrained=file_entry["weights"])
    meta = _assert_features(out, pre, model.eval().visual)
    assert meta["mean"] == list(open_clip.OPENAI_DATASET_MEAN) and meta["pooling"] == "cls"


def test_hf_save_pretrained_equals_automodel(tmp_path):
    entry = tiny.save_tiny_hf(tmp_path / "hf")
    out = tmp_path / "x"
    assert extract_cli(out, "--backbone", entry["backbone"]) == 0
    folder = entry["backbone"][len("hf:"):]
    model = transformers.AutoModel.from_pretrained(folder).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    meta = _assert_features(out, lambda im: proc(images=im, return_tensors="pt")["pixel_values"][0],
                            lambda x: model(pixel_values=x).last_hidden_state[:, 0])
    # The checkpoint has no pooler: the class token, never a randomly initialised pooler_output.
    assert meta["pooling"] == "cls" and meta["mean"] == [0.45, 0.45, 0.45] and meta["library"] == "transformers"
    assert meta["preprocess"]["size"] == {"height": 32, "width": 32}
    _probes_run(out)


def test_layer_and_pool_are_the_blocks_output(tmp_path):
    entry = tiny.save_tiny_hf(tmp_path / "hf")
    out = tmp_path / "x"
    assert extract_cli(out, "--backbone", entry["backbone"], "--layer", "0", "--pool", "avg") == 0
    folder = entry["backbone"][len("hf:"):]
    model = transformers.AutoModel.from_pretrained(folder).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    meta = _assert_features(out, lambda im: proc(images=im, return_tensors="pt")["pixel_values"][0],
                            lambda x: model(pixel_values=x, output_hidden_states=True).hidden_states[1][:, 1:].mean(1))
    assert meta["layer"] == 0 and meta["pooling"] == "avg"


def test_random_init_is_seeded_and_differs_from_the_weights(tmp_path):
    from dsbias.features.config import ExtractConfig
    from dsbias.models.frozen import load_frozen

    entry = tiny.save_tiny_timm(tmp_path / "m")
    settings = {"backbone": entry["backbone"], "kwargs": entry["kwargs"]}
    a, b = (load_frozen(ExtractConfig(**settings, init="random"), seed=0) for _ in range(2))
    c = load_frozen(ExtractConfig(**settings, init="random"), seed=1)
    w = load_frozen(ExtractConfig(**settings, weights=entry["weights"]), seed=0)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        fa, fb, fc, fw = (m.module(x) for m in (a, b, c, w))
    assert torch.equal(fa, fb) and not torch.allclose(fa, fc) and not torch.allclose(fa, fw)
    assert a.record["init"] == "random" and a.record["checkpoint_sha256"] is None and a.record["init_seed"] == 0
    assert w.record["init"] == "pretrained" and "init_seed" not in w.record and w.record["checkpoint_sha256"]


@pytest.mark.parametrize("spec,extra", [("open_clip:ViT-B-32", "clip"), ("hf:facebook/dinov2-small", "hf")])
def test_missing_extra_is_one_line(tmp_path, monkeypatch, capsys, spec, extra):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("open_clip", "transformers") else real(name, *a))
    assert extract_cli(tmp_path / "x", "--backbone", spec) == 2
    assert f"pip install -e '.[{extra}]'" in _error_line(capsys)


@pytest.mark.parametrize("argv,says", [
    (["--backbone", "hf:dsbias-tests/no-such-model"], "hf:/path/to/folder"),
    (["--backbone", "timm:vit_tiny_patch16_224"], "--weights FILE"),
    (["--backbone", "open_clip:hf-hub:dsbias-tests/no-such-model"], "local-dir"),
])
def test_missing_offline_model_is_one_line(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert extract_cli(tmp_path / "x", *argv) == 2
    err = _error_line(capsys)
    assert "HF_HUB_OFFLINE=1" in err and says in err


def test_bad_specs_and_settings_are_one_line(tmp_path, capsys):
    entry = tiny.save_tiny_timm(tmp_path / "m")
    kw = f"extract.kwargs={json.dumps(entry['kwargs'])}"
    cases = [
        (["--backbone", "torch:resnet"], "expected KIND:NAME"),
        (["--backbone", entry["backbone"], "--weights", str(tmp_path / "nope.safetensors"), kw], "is not a file"),
        (["--backbone", "timm:resnet18", "--weights", entry["weights"]], "do not fit this architecture"),
        (["--backbone", "timm:resnet18", "--init", "random", "--pool", "cls"], "pool=cls"),
        (["--backbone", entry["backbone"], "--weights", entry["weights"], kw, "--layer", "7"], "extract.layer"),
        (["--backbone", entry["backbone"], "--init", "random", "--weights", entry["weights"], kw], "init=random"),
    ]
    for i, (argv, says) in enumerate(cases):
        assert extract_cli(tmp_path / f"x{i}", *argv) == 2, argv
        err = _error_line(capsys)
        assert says in err, (argv, err)


def test_open_clip_file_weights_take_the_tags_preprocessing(tmp_path):
    """open_clip #1068: SigLIP's defaults are OpenAI mean/std and shortest-side resize, its weights want 0.5 and
    squash; with a bare weights file dsbias uses what the published tags agree on, and stops where they disagree."""
    from dsbias.errors import UserError
    from dsbias.models.frozen_openclip import _resolve
    from dsbias.models.spec import parse_spec

    f = tmp_path / "w.bin"
    f.write_bytes(b"x")

    class S:
        init, weights, pool, layer, kwargs = "pretrained", str(f), "default", "final", {}

    _, kwargs, _, source = _resolve(parse_spec("open_clip:ViT-B-16-SigLIP"), S, "t")
    assert kwargs["image_mean"] == (0.5, 0.5, 0.5) and kwargs["image_resize_mode"] == "squash" and "tags" in source
    with pytest.raises(UserError, match="different preprocessing"):
        _resolve(parse_spec("open_clip:ViT-L-14"), S, "t")


def test_compose_puts_the_anatomy_stages_around_the_model_preprocessing():
    from PIL import Image

    from dsbias.models.preprocess import from_torchvision

    net = timm.create_model("vit_tiny_patch16_224", num_classes=0, **tiny.TIMM_KWARGS)
    tf = timm.data.create_transform(**timm.data.resolve_data_config({"input_size": (3, 32, 32)}, model=net))
    pre = from_torchvision(tf, {})
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    assert pre.compose() is tf
    gray, half = (lambda im: im.convert("L").convert("RGB")), (lambda x: x * 0.5)
    got = pre.compose(gray, half)(img)
    want = pre.normalize(half(pre.to_unit(gray(img))))
    assert torch.equal(got, want) and float(pre.to_unit(img).min()) >= 0 and float(pre.to_unit(img).max()) <= 1
    # A Hugging Face processor split the same way: its [0, 1] output, normalised by us, is its own output.
    from dsbias.models.preprocess import from_processor

    proc = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6])
    hf = from_processor(proc, {})
    torch.testing.assert_close(hf.normalize(hf.to_unit(img)), hf.full(img))
    assert float(hf.to_unit(img).min()) >= 0 and float(hf.to_unit(img).max()) <= 1 and hf.record["mean"][0] == 0.4


def test_timm_block_outputs_match_the_model():
    """layer=K is block K's output (before the final norm), pooled: checked against timm's own modules."""
    from dsbias.features.config import ExtractConfig
    from dsbias.models.frozen import load_frozen

    x = torch.randn(2, 3, 64, 64)
    last = load_frozen(ExtractConfig(backbone="timm:resnet18", init="random", layer=-1), seed=3).module
    final = load_frozen(ExtractConfig(backbone="timm:resnet18", init="random"), seed=3).module
    with torch.no_grad():  # a ResNet has nothing between its last stage and the average pool
        torch.testing.assert_close(last(x), final(x))
    fb = load_frozen(ExtractConfig(backbone="timm:vit_tiny_patch16_224", init="random", layer=0, pool="cls",
                                   kwargs=tiny.TIMM_KWARGS), seed=3)
    net = fb.module.net
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = net.blocks[0](net.norm_pre(net._pos_embed(net.patch_embed(x))))[:, 0]
        torch.testing.assert_close(fb.module(x), want)
    assert fb.record["pooling"] == "cls" and fb.record["layer"] == 0 and fb.record["dim"] == 48


def test_another_runs_backbone_on_the_same_data_equals_its_own_features(tmp_path):
    from conftest import train_tiny

    from dsbias.pipelines.stages import export_backbone, features_of_run

    cfg, run, acc, manifest, method, _ = train_tiny(tmp_path / "r", "train.samples=16")
    export_backbone(run, method, cfg, manifest, acc)
    features_of_run(run, method.backbone, cfg, manifest, acc)
    from dsbias.cli.extract import main

    assert main(["--backbone", f"run:{run.root}", "--out", str(tmp_path / "again")]) == 0
    own, again = load_features(run.root, mmap=False), load_features(tmp_path / "again", mmap=False)
    np.testing.assert_allclose(own.train.features, again.train.features, rtol=1e-5, atol=1e-6)
    assert again.meta["backbone"] == f"run:{run.root}" and again.meta["checkpoint_sha256"] == own.meta[
        "checkpoint_sha256"]
    assert again.meta["preprocess"]["library"] == "dsbias" and again.meta["image_size"] == cfg.data.image_size


def test_anatomy_transform_runs_inside_the_models_preprocessing(tmp_path):
    from dsbias.anatomy.transforms import create_anatomy_transforms
    from dsbias.config import load_config
    from dsbias.models.preprocess import from_torchvision

    entry = tiny.save_tiny_timm(tmp_path / "m")
    out = tmp_path / "x"
    assert extract_cli(out, "--backbone", entry["backbone"], "--weights", entry["weights"],
                       f"extract.kwargs={json.dumps(entry['kwargs'])}", "data.transform=grayscale+lpf") == 0
    net = timm.create_model("vit_tiny_patch16_224", num_classes=0, **tiny.TIMM_KWARGS).eval()
    net.load_state_dict({k: v for k, v in safetensors.torch.load_file(entry["weights"]).items()
                         if not k.startswith("head.")})
    pre = from_torchvision(timm.data.create_transform(
        **timm.data.resolve_data_config({"input_size": (3, 32, 32)}, model=net)), {})
    a = create_anatomy_transforms(load_config(out / "config.yaml").data)
    meta = _assert_features(out, lambda im: pre.normalize(a.tensor(pre.to_unit(a.pil(im)))), net)
    assert meta["transform"] == "grayscale+lpf" and meta["preprocess"]["library"] == "timm"
