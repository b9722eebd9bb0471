"""Tests."""

from __future__ import annotations

import numpy as np
import pytest

from dsbias.features.store import FeatureError, load_features, write_meta, write_split


def make_features(root, n=(30, 12), dim=8, sources=("a", "b", "c"), seed=0):
    rng = np.random.default_rng(seed)
    start = 0
    for split, m in zip(("train", "val"), n):
        write_split(root, split, rng.normal(size=(m, dim)).astype(np.float32),
                    rng.integers(0, len(sources), m), np.arange(start, start + m))
        start += m
    write_meta(root, {"dim": dim, "sources": list(sources), "counts": {"train": n[0], "val": n[1]}})
    return root


def test_round_trip_from_run_dir(tmp_path):
    make_features(tmp_path / "features")
    fs = load_features(tmp_path)
    assert fs.dim == 8 and fs.sources == ["a", "b", "c"]
    assert fs.train.features.shape == (30, 8) and len(fs.val) == 12
    assert isinstance(fs.train.features, np.memmap)


@pytest.mark.parametrize("break_it,match", [
    (lambda r: (r / "val_labels.npy").unlink(), "val_labels.npy: missing"),
    (lambda r: np.save(r / "train_features.npy", np.zeros((30, 8))), "dtype float64"),
    (lambda r: np.save(r / "train_features.npy", np.zeros((30, 5), np.float32)), "dim 5"),
    (lambda r: np.save(r / "train_features.npy", np.full((30, 8), np.nan, np.float32)), "NaN"),
    (lambda r: np.save(r / "val_index.npy", np.arange(12)[::-1].copy()), "ascending"),
    (lambda r: np.save(r / "val_labels.npy", np.full(12, 7)), "labels outside"),
])
def test_bad_features_give_clear_errors(tmp_path, break_it, match):
    make_features(tmp_path)
    break_it(tmp_path)
    with pytest.raises(FeatureError, match=match):
        load_features(tmp_path)


def test_single_source_and_missing_dir(tmp_path):
    make_features(tmp_path, sources=("a",))
    with pytest.raises(FeatureError, match="1 source"):
        load_features(tmp_path)
    with pytest.raises(FeatureError, match="no meta.json"):
        load_features(tmp_path / "nowhere")
