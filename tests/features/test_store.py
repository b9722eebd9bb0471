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


def test_float16_on_disk_is_declared_in_meta_and_read_as_float32(tmp_path):
    from dsbias.features.store import read_rows, row_blocks

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    for split in ("train", "val"):
        write_split(tmp_path, split, x, rng.integers(0, 2, 50), np.arange(50), dtype="float16")
    write_meta(tmp_path, {"dim": 8, "sources": ["a", "b"], "dtype": "float16"})
    fs = load_features(tmp_path)
    assert fs.train.features.dtype == np.float16
    got = np.concatenate([b for _, b in row_blocks(fs.train.features, block=7)])
    assert got.dtype == np.float32 and np.array_equal(got, x.astype(np.float16).astype(np.float32))
    assert np.array_equal(read_rows(fs.val.features, 45, 99), got[45:])  # past the end: clipped like a slice
    write_meta(tmp_path, {"dim": 8, "sources": ["a", "b"]})  # meta says float32 (the default): a mismatch
    with pytest.raises(FeatureError, match="dtype float16, but meta.json says float32"):
        load_features(tmp_path)
    write_meta(tmp_path, {"dim": 8, "sources": ["a", "b"], "dtype": "int8"})
    with pytest.raises(FeatureError, match="dtype 'int8'"):
        load_features(tmp_path)
