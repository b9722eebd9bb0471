"""Tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import Manifest, ShortSourceError, build_manifest, load_or_build_manifest
from dsbias.data.views import create_eval_transform


def toy_cfg(*over: str):
    return load_config(None, ["data=toy", "data.per_source={train: 40, val: 10}", *over])


def cfg_overrides(roots: dict[str, Path], *over: str) -> list[str]:
    src = "[" + ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items()) + "]"
    return [f"data.sources={src}", *over]


def folder_cfg(roots: dict[str, Path], *over: str):
    return load_config(None, cfg_overrides(roots, *over))


def _corrupt_files(root: Path) -> None:
    good = (root / "img_0000.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image")
    (root / "notes.txt").write_text("ignored: not an image extension")


def test_split_is_disjoint_balanced_and_reproducible():
    cfg = toy_cfg()
    m1, m2 = build_manifest(cfg.data), build_manifest(cfg.data)
    assert m1.rows == m2.rows
    keys = {(r["origin"], r["item"]) for r in m1.rows}
    assert len(keys) == len(m1.rows)  # no image twice, so train and val are disjoint
    for split, n in (("train", 40), ("val", 10)):
        ids = m1.labels()[m1.split_indices(split)]
        assert np.bincount(ids).tolist() == [n, n, n]
    assert [r["index"] for r in m1.rows] == list(range(len(m1.rows)))


def test_folder_split_changes_with_seed_and_covers_whole_source(image_folders):
    cfg = folder_cfg(image_folders, "data.per_source={train: 6, val: 2}")
    a = build_manifest(cfg.data)
    b = build_manifest(folder_cfg(image_folders, "data.per_source={train: 6, val: 2}", "data.seed=5").data)
    assert [r["item"] for r in a.rows] != [r["item"] for r in b.rows]
    names = {Path(r["item"]).name for r in a.rows}
    assert names != {f"img_{i:04d}.png" for i in range(8)}  # not simply the first files


def test_pseudo_sources_are_disjoint_splits_of_one_source():
    cfg = load_config(None, ["data=toy_pseudo", "data.per_source={train: 5, val: 3}"])
    m = build_manifest(cfg.data)
    assert m.sources == ["alpha-0", "alpha-1", "alpha-2"]
    assert {r["origin"] for r in m.rows} == {"alpha"}
    assert len({r["item"] for r in m.rows}) == len(m.rows) == 24


def test_corrupt_files_are_skipped_and_counted(image_folders, tmp_path):
    _corrupt_files(image_folders["red"])
    cfg = folder_cfg(image_folders, "data.per_source={train: 15, val: 5}")
    m = build_manifest(cfg.data)
    assert m.summary["skipped"]["red"] == {"truncated": 1, "empty": 1, "not_an_image": 1}
    assert m.summary["skipped"]["blue"] == {}
    items = {Path(r["item"]).name for r in m.rows}
    assert not items & {"truncated.png", "empty.jpg", "text.jpg", "notes.txt"}
    m.save(tmp_path / "manifest.jsonl")
    assert Manifest.load(tmp_path / "manifest.jsonl").summary["skipped"]["red"]["empty"] == 1


def test_short_source_stops_or_uses_all(image_folders):
    cfg = folder_cfg(image_folders, "data.per_source={train: 18, val: 5}")
    with pytest.raises(ShortSourceError, match=r"data.sources\[red\]: 20 usable images, 23 asked"):
        build_manifest(cfg.data)
    m = build_manifest(folder_cfg(image_folders, "data.per_source={train: 18, val: 5}",
                                  "data.allow_fewer=true").data)
    assert len(m) == 40 and m.summary["obtained"]["red"] == {"train": 16, "val": 4}


def test_manifest_one_row_per_sample_and_dataset_contract(tmp_path):
    cfg = toy_cfg()
    m = load_or_build_manifest(cfg.data, tmp_path / "manifest.jsonl")
    assert len(m) == 3 * 50
    again = load_or_build_manifest(cfg.data, tmp_path / "manifest.jsonl")
    assert again.rows == m.rows
    ds = MixedDataset.from_config(m, "val", create_eval_transform(32), cfg.data)
    assert len(ds) == 30
    x, y, idx = ds[4]
    assert tuple(x.shape) == (3, 32, 32) and x.dtype.is_floating_point
    assert m.rows[int(idx)]["split"] == "val" and m.rows[int(idx)]["source_id"] == int(y)
    with pytest.raises(ValueError, match="data.per_source differs"):
        load_or_build_manifest(toy_cfg("data.per_source.train=39").data, tmp_path / "manifest.jsonl")


def test_manifest_records_native_metadata(image_folders):
    m = build_manifest(folder_cfg(image_folders, "data.per_source={train: 3, val: 1}").data)
    r = m.rows[0]
    assert (r["width"], r["height"], r["format"]) == (24, 24, "PNG") and r["bytes"] > 0


@pytest.mark.parametrize("workers", [0, 2])
def test_decoded_image_cache_decodes_each_image_once_up_front_and_changes_nothing(image_folders, workers):
    from torchvision import transforms as T

    from dsbias.data.sources.registry import create_sources

    cfg = folder_cfg(image_folders, "data.per_source={train: 8, val: 2}")
    manifest = build_manifest(cfg.data)
    aug = T.Compose([T.RandomResizedCrop(16), T.RandomHorizontalFlip(), T.PILToTensor()])
    plain = MixedDataset.from_config(manifest, "train", aug, cfg.data)
    cached = MixedDataset(manifest, "train", aug, create_sources(cfg.data), max_short_side=0, cache=True)
    reads = []
    for reader in cached.readers.values():
        real = reader.read
        reader.read = lambda item, real=real: reads.append(item) or real(item)
    cached.fill_cache(workers)  # with workers, the decoding happens in other processes
    assert sorted(reads) == ([] if workers else sorted(r["item"] for r in cached.rows))
    assert all(img is not None for img in cached.cache)
    reads.clear()
    for epoch in range(2):
        for i in range(len(plain)):
            torch.manual_seed(100 * epoch + i)  # the same random augmentation for both
            a = plain[i]
            torch.manual_seed(100 * epoch + i)
            b = cached[i]
            assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert reads == []  # nothing decoded again, over two epochs
    # The eval view of the same rows shares the decoded images (classification's train top-1).
    view = cached.with_transform(T.PILToTensor())
    assert view.cache is cached.cache and torch.equal(view[0][0], T.PILToTensor()(cached.cache[0]))
    assert reads == [] and cached.transform is aug


def test_data_cache_decoded_fills_the_cache_when_the_dataset_is_made(image_folders):
    cfg = folder_cfg(image_folders, "data.per_source={train: 8, val: 2}", "data.cache_decoded=true",
                     "data.num_workers=0")
    ds = MixedDataset.from_config(build_manifest(cfg.data), "val", lambda img: img, cfg.data)
    assert len(ds.cache) == len(ds) == 2 * len(image_folders)
    assert all(np.array_equal(np.asarray(img), np.asarray(ds.decode_row(ds.row(i)))) for i, img in enumerate(ds.cache))
