"""The load-time cap ``data.max_short_side``: the pixels ``tools/prepare.py`` writes, applied where every image is
read, and recorded in (and checked against) the manifest."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from conftest import prepare_cfg
from PIL import Image

from dsbias.config import ConfigError, load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest, load_or_build_manifest, make_manifest, summary_text
from dsbias.data.prepare import PrepareOptions, prepare
from dsbias.data.sources.registry import create_sources


def _pixels(ds: MixedDataset) -> dict[tuple[str, str], np.ndarray]:
    """``(source, item) -> [H, W, 3]`` uint8 for a dataset whose transform is ``np.asarray``."""
    return {(row["source"], row["item"]): ds[i][0] for i, row in enumerate(ds.rows)}


def test_load_time_cap_gives_the_pixels_of_prepare(tmp_path):
    cfg = prepare_cfg(tmp_path, tmp_path / "shards")  # a 800x600 JPEG, a 300x200 PNG, a 520x700 WebP per source
    prepare(cfg.data, cfg.out, PrepareOptions())  # the paper's policy: shorter side > 500 -> 500
    shards = load_config(None, [f"data={tmp_path / 'shards' / 'data.yaml'}", "data.dedup=ignore"]).data
    readers = create_sources(shards)
    prepared = {}
    for row in build_manifest(shards).rows:
        body, meta = readers[row["origin"]].read_member(row["item"])
        prepared[(row["source"], meta["item"])] = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))

    capped = dataclasses.replace(cfg.data, max_short_side=500)  # the same folders, read with the cap
    manifest = build_manifest(capped)
    seen = {}
    for split in ("train", "val"):
        ds = MixedDataset.from_config(manifest, split, np.asarray, capped)
        seen.update(_pixels(ds))
    assert seen.keys() == prepared.keys() and len(seen) == 6
    for key, arr in seen.items():
        assert arr.shape == prepared[key].shape and np.array_equal(arr, prepared[key]), key
    assert {a.shape[:2] for a in seen.values()} == {(500, 666), (200, 300), (673, 500)}

    uncapped = MixedDataset.from_config(manifest, "train", np.asarray, cfg.data)
    assert max(min(a.shape[:2]) for a in _pixels(uncapped).values()) > 500  # off: the native pixels


def test_cap_is_recorded_in_the_manifest_and_checked(tmp_path):
    off = prepare_cfg(tmp_path, tmp_path / "run").data
    data = dataclasses.replace(off, max_short_side=500)
    manifest, path = make_manifest(data, tmp_path / "drawn")
    assert manifest.summary["max_short_side"] == 500
    assert manifest.summary["native_above_cap"] == {"a": 2, "b": 2}  # the 800x600 and 520x700 images
    assert "load-time cap: shorter side <= 500 px" in summary_text(manifest, path)
    with pytest.raises(ValueError, match=r"drawn with data.max_short_side=500, this config has 0"):
        load_or_build_manifest(dataclasses.replace(off, manifest=str(path)), tmp_path / "r1" / "manifest.jsonl")
    given = load_or_build_manifest(dataclasses.replace(data, manifest=str(path)), tmp_path / "r2" / "manifest.jsonl")
    assert given.summary["max_short_side"] == 500
    with pytest.raises(ValueError, match=r"data.max_short_side differs"):  # a run dir drawn with the cap
        load_or_build_manifest(off, path)
    with pytest.raises(ConfigError, match="data.max_short_side=-1"):
        load_config(None, ["data=toy", "data.max_short_side=-1"])
