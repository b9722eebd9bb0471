"""Resumable extraction: a stopped (or killed) extraction rerun into the same dir skips the blocks it wrote and
publishes the same bytes as an uninterrupted one; parts of other settings are never mixed in."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import extract_cli

from dsbias.features import store
from dsbias.features.store import FeatureError, load_features
from dsbias.models import tiny


def _timm(tmp_path):
    import json

    entry = tiny.save_tiny_timm(tmp_path / "m")
    return ["--backbone", entry["backbone"], "--weights", entry["weights"],
            f"extract.kwargs={json.dumps(entry['kwargs'])}"], entry


def test_stopped_extraction_resumes_to_identical_files(tmp_path, monkeypatch):
    argv, _ = _timm(tmp_path)
    assert extract_cli(tmp_path / "straight", *argv) == 0
    out = tmp_path / "stopped"
    assert extract_cli(out, *argv, "extract.stop_after=2") == 0  # 2 of 5 train blocks, as if killed
    feats = out / "features"
    assert not (feats / "meta.json").exists() and store.completed_blocks(feats, "train") == {0, 1}
    assert not store.completed_blocks(feats, "val")
    saved = []
    real = store.save_part
    monkeypatch.setattr(store, "save_part", lambda root, split, b, f: saved.append((split, b)) or real(root, split,
                                                                                                      b, f))
    assert extract_cli(out, *argv) == 0
    assert saved == [("train", 2), ("train", 3), ("train", 4), ("val", 0), ("val", 1), ("val", 2)]
    a, b = load_features(tmp_path / "straight", mmap=False), load_features(out, mmap=False)
    for split in ("train", "val"):
        for part in ("features", "labels", "index"):
            assert np.array_equal(getattr(getattr(a, split), part), getattr(getattr(b, split), part))
    assert a.meta == b.meta and not store.parts_dir(feats).exists()


def test_parts_of_other_weights_are_refused(tmp_path, capsys):
    argv, entry = _timm(tmp_path)
    out = tmp_path / "x"
    assert extract_cli(out, *argv, "extract.stop_after=1") == 0
    tiny.save_tiny_timm(tmp_path / "m", seed=2)  # same path, other weights
    assert extract_cli(out, *argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "partial extraction with other settings" in err[0] and "checkpoint_sha256" in err[0]


def test_publish_refuses_a_missing_part(tmp_path):
    store.save_part(tmp_path, "train", 0, np.zeros((4, 3), np.float32))
    with pytest.raises(FeatureError, match="train-0000001.npy: missing"):
        store.publish_parts(tmp_path, "train", 3, 4, np.zeros(6, np.int64), np.arange(6))
    store.save_part(tmp_path, "train", 1, np.ones((2, 3), np.float32))
    store.publish_parts(tmp_path, "train", 3, 4, np.zeros(6, np.int64), np.arange(6))
    x = np.load(store.split_file(tmp_path, "train", "features"))
    assert x.shape == (6, 3) and x[:4].sum() == 0 and x[4:].sum() == 6


def test_extract_settings_are_checked_when_the_config_loads():
    from dsbias.config import load_config
    from dsbias.typedconfig import ConfigError

    for over, says in ((["extract.block_batches=0"], "block_batches"), (["extract.layer=last"], "extract.layer"),
                       (["extract.pool=max"], "extract.pool"), (["extract.weights=/w.pt"], "apply to extract.backbone"),
                       (["extract.backbone=timm:x", "extract.kwargs={a: 1}", "extract.backbone=hf:y"], "only timm")):
        with pytest.raises(ConfigError, match=says):
            load_config(None, ["data=toy", *over])
