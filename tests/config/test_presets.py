"""Dataset classification parts: corruptions, augmentation levels, mixup, evaluation, loss check, presets, init."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsbias.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "configs/classify").glob("*.yaml")), ids=lambda p: p.stem)
def test_classify_presets_load(path):
    cfg = load_config(path)
    assert cfg.method.name == "supervised" and cfg.out == "out/classify"


def test_liu_he_recipe_values():
    cfg = load_config(REPO / "configs/classify/liu_he.yaml")
    from dsbias.engine.optim import learning_rate

    assert learning_rate(cfg.optim, cfg.train) == pytest.approx(1e-3)
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
