"""The hf kind reads a save_to_disk dataset (and a local dataset folder) offline: the same images as datasets'
own decoding, splits by name, class labels as sources, bad rows counted, one-line errors."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import noise_png, write_parquet

from dsbias.config import ConfigError, load_config
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.registry import create_sources, expand_sources


def cfg_with(sources: str, *over: str):
    return load_config(None, [f"data.sources={sources}", *over])


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    """A DatasetDict (train/test, Image feature + ClassLabel) and one Dataset with a binary column and a null."""
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["laion", "coyo"]),
                               "original_width": datasets.Value("int64"), "original_height": datasets.Value("int64")})
    def split(n: int, start: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"image": [{"bytes": noise_png(start + i), "path": None} for i in range(n)],
                                           "label": [i % 2 for i in range(n)],
                                           "original_width": [900 + i if i < 3 else None for i in range(n)],
                                           "original_height": [600 if i < 3 else None for i in range(n)]},
                                          features=feats)
    datasets.DatasetDict({"train": split(24, 0), "test": split(6, 100)}).save_to_disk(tmp_path / "dd")
    raw = [noise_png(200 + i) for i in range(10)]
    raw[2] = None
    plain = datasets.Features({"caption": datasets.Value("string"), "png": datasets.Value("binary")})
    datasets.Dataset.from_dict({"caption": ["c"] * 10, "png": raw}, features=plain).save_to_disk(tmp_path / "d")
    return {"dd": tmp_path / "dd", "d": tmp_path / "d"}


def test_save_to_disk_gives_the_same_images_as_datasets_decoding(saved):
    cfg = cfg_with(f"[{{name: dd, kind: hf, path: '{saved['dd']}', split: train, source_column: label}}, "
                   f"{{name: d, kind: hf, path: '{saved['d']}'}}]", "data.per_source={train: 8, val: 2}",
                   "data.allow_fewer=true")
    assert [s.name for s in expand_sources(cfg.data).sources] == ["coyo", "laion", "d"]  # class names, sorted
    m = build_manifest(cfg.data)
    readers = create_sources(cfg.data)
    train = datasets.load_from_disk(str(saved["dd"]))["train"]
    plain = datasets.load_from_disk(str(saved["d"]))
    for r in m.rows:
        split, row = r["item"].split(":")
        img = np.asarray(readers[r["origin"]].read(r["item"])[0])
        if r["source"] == "d":
            assert split == "dataset"
            direct = np.asarray(datasets.Image().decode_example({"bytes": plain[int(row)]["png"], "path": None}))
        else:
            assert split == "train" and train.features["label"].int2str(train[int(row)]["label"]) == r["source"]
            direct = np.asarray(train[int(row)]["image"].convert("RGB"))
            if int(row) < 3:
                assert (r["width"], r["height"]) == (900 + int(row), 600)  # native-size columns, when present
        assert np.array_equal(img, direct)
    assert m.summary["skipped"]["d"] == {"null_image": 1}
    assert m.summary["obtained"]["d"] == {"train": 7, "val": 2}  # all 9 usable rows of 10 (allow_fewer)


def test_splits_are_chosen_by_name_and_errors_are_one_line(saved, tmp_path):
    one = f"{{name: b, kind: hf, path: '{saved['d']}'}}"
    with pytest.raises(ConfigError, match=r"split: set one of .* has splits \['test', 'train'\]"):
        create_sources(cfg_with(f"[{{name: a, kind: hf, path: '{saved['dd']}', source_column: ''}}, {one}]").data)[
            "a"].sample_order(0)
    with pytest.raises(ConfigError, match=r"no split 'validation'; .* has splits \['test', 'train'\]"):
        expand_sources(cfg_with(f"[{{name: a, kind: hf, path: '{saved['dd']}', split: validation}}, {one}]").data)
    test = cfg_with(f"[{{name: a, kind: hf, path: '{saved['dd']}', split: test, source_column: ''}}, {one}]")
    assert {i.split(":")[0] for i in create_sources(test.data)["a"].sample_order(0)} == {"test"}
    with pytest.raises(ConfigError, match="image_column: no column 'jpg' in"):
        build_manifest(cfg_with(f"[{{name: a, kind: hf, path: '{saved['d']}', image_column: jpg}}, {one}]").data)
    with pytest.raises(ConfigError, match="is not a directory"):
        expand_sources(cfg_with(f"[{{name: a, kind: hf, path: '{tmp_path / 'nope'}'}}, {one}]").data)


def test_a_local_dataset_folder_loads_offline_into_a_temp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    images = [noise_png(300 + i) for i in range(8)]
    write_parquet(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet",
                  {"image": [{"bytes": b, "path": None} for b in images]}, row_group_size=3)
    cfg = cfg_with(f"[{{name: r, kind: hf, path: '{tmp_path / 'repo'}', split: train}}, "
                   f"{{name: p, kind: parquet, path: '{tmp_path / 'repo' / 'data'}'}}]",
                   "data.per_source={train: 6, val: 2}", "data.dedup=ignore")
    m = build_manifest(cfg.data)
    by_source = {s: sorted(r["sha1"] for r in m.rows if r["source"] == s) for s in ("r", "p")}
    assert by_source["r"] == by_source["p"] and len(by_source["r"]) == 8  # both kinds read the same 8 images
