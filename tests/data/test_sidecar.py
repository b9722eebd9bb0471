"""Shard sidecar metadata is checked, never trusted (issue 13, item 3): a bad one is ignored for its member,
counted as ``bad_sidecar``, and no size in a manifest is ever zero or negative."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import noise_png, write_shard

from dsbias.config import load_config
from dsbias.data.decode import ImageInfo
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.base import native_info

DECODED = ImageInfo(width=12, height=13, format="PNG", bytes=100, sha1="x", mode="RGB")
GOOD = {"original_width": 640, "original_height": 480, "original_format": "jpeg", "original_bytes": 5000}


@pytest.mark.parametrize("bad", [
    {"original_height": "abc"}, {"original_width": -5}, {"original_height": 0}, {"original_width": 1.5},
    {"original_width": True}, {"original_width": 1 << 40}, {"original_format": "EXE"}, {"original_format": 3},
    {"original_bytes": -1}, {"original_bytes": "big"}, {"original_width": [640]},
])
def test_bad_values_are_ignored_and_counted(bad):
    counts: Counter = Counter()
    assert native_info(DECODED, {**GOOD, **bad}, counts) == DECODED
    assert counts == Counter(bad_sidecar=1)


def test_good_values_are_used():
    counts: Counter = Counter()
    info = native_info(DECODED, {**GOOD, "original_width": 640.0}, counts)  # a float without fraction is an int
    assert (info.width, info.height, info.format, info.bytes, info.sha1) == (640, 480, "JPEG", 5000, "x")
    assert native_info(DECODED, {"original_width": None, "original_height": 5}, counts) == DECODED  # null: absent
    assert not counts


def _shard_source(tmp_path, name, sidecars):
    members = []
    for i in range(8):
        members.append((f"{i:03d}.png", noise_png(100 * len(name) + i)))
        if i in sidecars:
            side = sidecars[i]
            members.append((f"{i:03d}.json", side if isinstance(side, bytes) else json.dumps(side).encode()))
    write_shard(tmp_path / name / "000.tar", members)
    return f"{{name: {name}, kind: webdataset, path: '{tmp_path / name / '000.tar'}'}}"


def test_manifest_with_bad_sidecars(tmp_path):
    side = {0: {"original_width": 10, "original_height": "abc"}, 1: {"original_width": -5, "original_height": 0},
            2: b"{not json", 3: [1, 2], 4: {"original_width": 50, "original_height": 40, "original_format": "PNG"}}
    srcs = [_shard_source(tmp_path, "a", side), _shard_source(tmp_path, "bb", {})]
    cfg = load_config(None, [f"data.sources=[{', '.join(srcs)}]", "data.per_source={train: 6, val: 2}",
                             "data.num_workers=0"])
    m = build_manifest(cfg.data)
    assert m.summary["skipped"]["a"] == {"bad_sidecar": 4}
    assert all(r["width"] > 0 and r["height"] > 0 and r["bytes"] > 0 for r in m.rows)
    good = [r for r in m.rows if r["source"] == "a" and r["item"].startswith("000.tar::004.png")]
    assert [(r["width"], r["height"]) for r in good] == [(50, 40)]  # a valid sidecar still gives the native size
