"""Dataset classification parts: corruptions, augmentation levels, mixup, evaluation, loss check, presets, init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image

from dsbias.classify.evaluate import predict
from dsbias.classify.finetune import init_from_run
from dsbias.classify.loss_check import loss_trend
from dsbias.config import CorruptConfig, load_config
from dsbias.data.corrupt import Corruption
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest
from dsbias.methods import create_method
from dsbias.models import save_backbone

REPO = Path(__file__).resolve().parent.parent
TINY = ["data=toy", "data.per_source={train: 12, val: 6}", "data.image_size=32", "data.num_workers=0",
        "method=supervised", "model=convnext_atto_1_10_uniform"]


def _img(seed: int, size: int = 96) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "configs/corrupt").glob("*.yaml")))
def test_corruptions_are_deterministic_and_keep_shape(preset):
    cfg = load_config(None, ["data=toy", f"method.supervised.corrupt={preset}"]).method.supervised.corrupt
    c = Corruption(cfg)
    torch.manual_seed(1)
    a = c(_img(0))
    torch.manual_seed(2)  # the caller's RNG state must not matter: seeded by the image
    b = c(_img(0))
    assert a.size == (96, 96) and a.mode == "RGB" and np.asarray(a).dtype == np.uint8
    assert np.array_equal(np.asarray(a), np.asarray(b))
    if cfg.kind != "none":
        assert not np.array_equal(np.asarray(a), np.asarray(_img(0))), "corruption changed nothing"


def test_random_corruptions_differ_between_images_and_leave_global_rng_alone():
    c = Corruption(CorruptConfig(kind="noise", strength=0.2))
    flat = Image.new("RGB", (32, 32), (128, 128, 128))
    other = Image.new("RGB", (32, 32), (129, 128, 128))
    d1 = np.asarray(c(flat), dtype=int) - 128
    d2 = np.asarray(c(other), dtype=int) - np.array([129, 128, 128])
    assert not np.array_equal(d1, d2)
    assert 0.15 * 255 < d1.std() < 0.25 * 255  # std 0.2 in [0, 1] units (a little clipping)
    jit = Corruption(CorruptConfig(kind="color_jitter", strength=1.0))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    jit(_img(3))
    assert torch.equal(torch.rand(3), expected)


def test_corruption_needs_a_strength():
    with pytest.raises(ValueError, match="strength"):
        Corruption(CorruptConfig(kind="blur", strength=0))


def test_augment_levels_compose_and_none_is_the_eval_view():
    cfg = load_config(None, [*TINY, "method.supervised.augment=none"])
    method = create_method(cfg, 3)
    assert method.mixup is None
    img = _img(5)
    torch.testing.assert_close(method.create_train_transform()(img), method.create_eval_transform()(img))
    full = create_method(load_config(None, [*TINY, "method.supervised.augment=full"]), 3)
    assert full.mixup is not None and "RandAugment" in repr(full.create_train_transform())
    crop = load_config(None, [*TINY, "method.supervised.augment=crop_randaug", "method.supervised.augment=crop"])
    assert crop.method.supervised.augment.randaug == "" and crop.method.supervised.augment.crop


def test_mixup_is_seeded_by_torch_and_restores_numpy():
    method = create_method(load_config(None, [*TINY, "method.supervised.augment=full"]), 3)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    losses = []
    for _ in range(2):
        torch.manual_seed(3)
        losses.append(method((x, y, torch.arange(4)))["loss"].item())
    assert losses[0] == losses[1]
    assert np.random.rand() == expected
    with pytest.raises(ValueError, match="even"):
        method((x[:3], y[:3], torch.arange(3)))


def test_eval_covers_every_image_once_and_does_not_depend_on_batch_size():
    cfg = load_config(None, TINY)
    manifest = build_manifest(cfg.data)
    method = create_method(cfg, 3)
    method.train()
    ds = MixedDataset.from_config(manifest, "val", method.create_eval_transform(), cfg.data)
    acc = Accelerator(cpu=True)
    a = predict(method, ds, acc, batch_size=1, num_workers=0, desc="val")
    b = predict(method, ds, acc, batch_size=7, num_workers=0, desc="val")
    assert method.training, "predict must restore training mode"
    assert np.array_equal(a.index, manifest.split_indices("val")) and np.array_equal(a.labels, ds.labels)
    assert np.array_equal(a.preds, b.preds)


def test_loss_trend_flags_a_flat_curve():
    down = [{"step": s, "loss": 1.1 - 0.01 * s} for s in range(1, 51)]
    flat = [{"step": s, "loss": 1.1 + 0.01 * (s % 3)} for s in range(1, 51)]
    early = [{"step": s, "loss": 1.0 + 0.001 * (s % 3)} for s in range(1, 51)]  # learnt before the first line
    assert loss_trend(down, 3)["loss_decreased"] is True
    assert loss_trend(flat, 3)["loss_decreased"] is False
    assert loss_trend(early, 3)["loss_decreased"] is True  # below ln 3 = 1.0986: it did learn
    assert loss_trend(down[:1], 3)["loss_decreased"] is None
    # eval lines and events are ignored; a step logged twice (resume) counts once
    noisy = [*down, {"step": 50, "eval/val_top1": 0.3}, {"event": "end", "step": 50, "loss": 9.0}]
    assert loss_trend(noisy, 3) == loss_trend(down, 3)


@pytest.mark.parametrize("path", sorted((REPO / "configs/classify").glob("*.yaml")), ids=lambda p: p.stem)
def test_classify_presets_load(path):
    cfg = load_config(path)
    assert cfg.method.name == "supervised" and cfg.out == "out/classify"


def test_liu_he_recipe_values():
    cfg = load_config(REPO / "configs/classify/liu_he.yaml")
    from dsbias.engine import learning_rate

    assert learning_rate(cfg) == pytest.approx(1e-3)
    assert cfg.optim.betas == [0.9, 0.95] and cfg.optim.weight_decay == 0.3
    assert cfg.train.batch_size == 4096 and cfg.data.image_size == 224 and cfg.data.crop_pct == 0.875
    assert cfg.train.samples == 300 * 1_281_167 and cfg.optim.warmup_samples == 20 * 1_281_167
    aug = cfg.method.supervised.augment
    assert (aug.randaug, aug.mixup, aug.cutmix, aug.switch_prob, aug.reprob) == ("rand-m9-mstd0.5-inc1", 0.8, 1.0,
                                                                                  0.5, 0.0)
    assert cfg.method.supervised.label_smoothing == 0.1


@pytest.mark.parametrize("group", ["augment", "corrupt", "model"])
def test_group_presets_load(group):
    key = {"augment": "method.supervised.augment", "corrupt": "method.supervised.corrupt", "model": "model"}[group]
    for path in sorted((REPO / "configs" / group).glob("*.yaml")):
        load_config(None, ["data=toy", f"{key}={path.stem}"])


def test_init_from_run_loads_strictly_and_checks_the_model(tmp_path):
    cfg = load_config(None, TINY)
    src = create_method(cfg, 3)
    save_backbone(tmp_path, src.backbone, {"image_size": 32, "method": "mae"})
    dst = create_method(cfg, 3)
    init_from_run(dst.backbone, tmp_path)
    for (k, a), b in zip(src.backbone.state_dict().items(), dst.backbone.state_dict().values()):
        assert torch.equal(a, b), k
    other = create_method(load_config(None, [*TINY, "model=convnext_atto_1_10"]), 3)
    with pytest.raises(ValueError, match="backbone differs"):
        init_from_run(other.backbone, tmp_path)


def test_anatomy_transform_reaches_both_views():
    gray = create_method(load_config(None, [*TINY, "method.supervised.augment=full", "data.transform=grayscale"]), 3)
    std, mean = torch.tensor([0.229, 0.224, 0.225])[:, None, None], torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    for view in (gray.create_train_transform(), gray.create_eval_transform()):
        x = view(_img(4)) * std + mean  # back to [0, 1]
        torch.testing.assert_close(x[0], x[1], atol=1e-5, rtol=0)
    lpf = create_method(load_config(None, [*TINY, "method.supervised.augment=full", "data.transform=lpf"]), 3)
    assert "RandAugment" not in repr(lpf.create_train_transform())  # Zeng et al. drop it for filters


def test_liu_he_recipe_runs_tiny_with_accumulation_and_resumes(tmp_path):
    from dsbias.classify import main

    cfg = load_config(REPO / "configs/classify/liu_he.yaml", [
        "data=toy", "data.per_source={train: 16, val: 8}", "data.image_size=32", "data.num_workers=0",
        "model=convnext_atto_1_10_uniform", "train.batch_size=8", "train.grad_accum=2", "train.samples=64",
        "train.log_every=1", "train.log_with=[]", "optim.warmup_samples=16", f"out={tmp_path}"])
    first = main(cfg)  # full aug: RandAugment + mixup/cutmix on per-process batches of 4, 2 micro-steps
    assert first["steps"] == 8 and first["n_val"] == 24 and first["n_train"] == 48
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "backbone.safetensors").is_file()
    again = main(cfg)  # the run is complete: rerunning evaluates the saved state again
    assert again["top1"] == first["top1"] and again["confusion"] == first["confusion"]


def test_two_fresh_runs_are_identical(tmp_path):
    from dsbias.classify import main
    from dsbias.runs import JsonlLog

    over = [*TINY, "train.batch_size=12", "train.samples=48", "train.log_every=1", "train.log_with=[]"]
    runs = [main(load_config(REPO / "configs/classify/default.yaml", [*over, f"out={tmp_path / str(i)}"]))
            for i in range(2)]
    assert runs[0]["confusion"] == runs[1]["confusion"]
    losses = [[r["loss"] for r in JsonlLog(tmp_path / str(i) / "log.jsonl").read() if "loss" in r] for i in range(2)]
    assert losses[0] == losses[1] and len(losses[0]) == 4


def test_randaugment_posterize_zero_bits_does_not_crash():
    """timm asks Pillow for 0-bit posterize at high magnitude; Pillow >= 13 refuses (see dsbias.data.augment)."""
    import numpy as np
    from PIL import Image
    from timm.data.auto_augment import AugmentOp

    import dsbias.data.augment  # noqa: F401  (installs the fix)

    op = AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)  # -> keep 4 - 4 = 0 bits
    out = op(Image.new("RGB", (8, 8), (200, 100, 50)))
    assert np.asarray(out).max() == 0
