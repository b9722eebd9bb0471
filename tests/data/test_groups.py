"""Groups: every way of naming them (regex, dir, list column, shard key, toy scenes), a split by group that is
disjoint and balanced, whole groups for pseudo-sources, official splits kept, duplicates never straddling, and
one-line errors."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from conftest import png_bytes, write_images, write_shard

from dsbias.config import ConfigError, load_config
from dsbias.data.groups import GroupError
from dsbias.data.manifest import ShortSourceError, build_manifest

TOY_SCENES = ("data.sources=[{name: a, kind: toy, scene_size: 5}, {name: b, kind: toy, scene_size: 5}, "
              "{name: c, kind: toy, scene_size: 5}]")


def cfg_with(*over: str):
    return load_config(None, [*over, "data.num_workers=0"])


def assert_split_by_group(m, per_source=None, slack=0):
    """No group on both sides; per source, counts within ``slack`` of ``per_source`` (train, val)."""
    for lab in m.sources:
        groups = {s: {r["group"] for r in m.rows if r["source"] == lab and r["split"] == s} for s in ("train", "val")}
        assert groups["train"] and groups["val"] and not groups["train"] & groups["val"], lab
        if per_source:
            n = Counter(r["split"] for r in m.rows if r["source"] == lab)
            assert abs(n["val"] - per_source[1]) <= slack and n["train"] + n["val"] == sum(per_source), (lab, n)


def test_toy_scenes_split_by_scene_disjoint_and_balanced():
    m = build_manifest(cfg_with("data=toy_grouped", TOY_SCENES, "data.per_source={train: 40, val: 20}").data)
    assert_split_by_group(m, (40, 20), slack=2)  # off by at most half a group of 5
    assert all(r["group"] == r["item"].split("/")[0] for r in m.rows)
    per = m.summary["groups"]["per_source"]
    assert per == {s: {"train": 8, "val": 4} for s in ("a", "b", "c")} and m.summary["groups"]["by"]["dir"] == 0
    codes = m.group_codes()
    assert len(set(codes[m.split_indices("train")]) & set(codes[m.split_indices("val")])) == 0
    assert len(set(codes)) == 36  # one code per (source, scene): scene "0" of a and of b are two groups
    again = build_manifest(cfg_with("data=toy_grouped", TOY_SCENES, "data.per_source={train: 40, val: 20}").data)
    assert again.rows == m.rows


def test_uneven_groups_keep_counts_close(tmp_path):
    rng = np.random.default_rng(0)
    roots = {}
    for s, colour in (("red", (200, 60, 60)), ("blue", (60, 60, 200))):
        for photo in range(12):
            write_images(tmp_path / s / f"photo{photo}", int(rng.integers(1, 8)), colour, seed=photo)
        roots[s] = tmp_path / s
    src = ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items())
    m = build_manifest(cfg_with(f"data.sources=[{src}]", "data.group={dir: -1}",
                                "data.per_source={train: 20, val: 8}").data)
    assert_split_by_group(m, (20, 8), slack=4)  # groups of up to 7: half a group
    assert {r["group"] for r in m.rows} <= {f"photo{i}" for i in range(12)}


def test_regex_groups_and_its_errors(tmp_path):
    for s in ("x", "y"):
        write_images(tmp_path / s, 24, (100, 100, 100), seed=len(s))
        for i, p in enumerate(sorted((tmp_path / s).iterdir())):
            p.rename(p.with_name(f"shot{i // 4}__{i % 4}.png"))
    src = "data.sources=[" + ", ".join(f"{{name: {s}, kind: folder, path: '{tmp_path / s}'}}" for s in "xy") + "]"
    m = build_manifest(cfg_with(src, "data.group={regex: '([^/]+)__[^/]*$'}", "data.per_source={train: 16, val: 8}",
                                "data.dedup=ignore").data)
    assert_split_by_group(m, (16, 8), slack=2)
    assert {r["group"] for r in m.rows} == {f"shot{i}" for i in range(6)}
    with pytest.raises(GroupError, match=r"does not match 'shot.*\.png' \(source 'x'\)"):
        build_manifest(cfg_with(src, "data.group={regex: 'nomatch(\\d+)'}", "data.per_source={train: 4, val: 2}").data)
    with pytest.raises(GroupError, match="folder source, which has no per-image columns"):
        build_manifest(cfg_with(src, "data.group={column: photo}", "data.per_source={train: 4, val: 2}").data)
    with pytest.raises(ConfigError, match="data.group"):
        cfg_with(src, "data.group={regex: 'a', dir: 0}")
    with pytest.raises(ConfigError, match="not a regular expression"):
        cfg_with(src, "data.group={regex: '(unclosed'}")


def test_list_column_and_shard_key(image_folders, tmp_path):
    rows = ["path,source,photo"] + [f"{p},{s},{s}-p{i % 5}" for s, root in image_folders.items()
                                    for i, p in enumerate(sorted(root.iterdir()))]
    (tmp_path / "list.csv").write_text("\n".join(rows))
    m = build_manifest(cfg_with(f"data.sources=[{{name: mix, kind: list, path: '{tmp_path / 'list.csv'}'}}]",
                                "data.group={column: photo}", "data.per_source={train: 12, val: 4}").data)
    assert_split_by_group(m)
    assert all(r["group"].startswith(r["source"] + "-p") for r in m.rows)
    rng = np.random.default_rng(0)
    for s in ("a", "b"):
        members = []
        for i in range(12):
            members += [(f"{i:04d}.png", png_bytes(rng.integers(0, 255, (9, 9, 3), dtype=np.uint8))),
                        (f"{i:04d}.json", json.dumps({"uploader": f"u{i % 4}"}).encode())]
        write_shard(tmp_path / "wds" / s / "00000.tar", members)
    wds = ", ".join(f"{{name: {s}, kind: webdataset, path: '{tmp_path / 'wds' / s}/00000.tar'}}" for s in "ab")
    m = build_manifest(cfg_with(f"data.sources=[{wds}]", "data.group={key: uploader}",
                                "data.per_source={train: 6, val: 3}").data)
    assert_split_by_group(m, (6, 3), slack=1)
    assert {r["group"] for r in m.rows} == {"u0", "u1", "u2", "u3"}
    # A shard member's item path is <shard>/<member>.
    m = build_manifest(cfg_with(f"data.sources=[{wds}]", "data.group={regex: '^00000[.]tar/[0-9]{3}([0-9])[.]png$'}",
                                "data.per_source={train: 6, val: 3}").data)
    assert_split_by_group(m)
    assert all(r["group"] == r["item"].split("::")[1][3] for r in m.rows)


def test_one_group_per_source_cannot_be_split(image_folders):
    src = ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in image_folders.items())
    with pytest.raises(ShortSourceError, match="cannot be split into train and val by group"):
        build_manifest(cfg_with(f"data.sources=[{src}]", "data.group={regex: '(img)'}",
                                "data.per_source={train: 6, val: 2}").data)


def test_pseudo_sources_get_whole_groups():
    m = build_manifest(cfg_with("data.sources=[{name: a, kind: toy, scene_size: 4}]", "data.pseudo=3",
                                "data.group={dir: 0}", "data.per_source={train: 16, val: 8}").data)
    assert m.sources == ["a-0", "a-1", "a-2"]
    owner = {}
    for r in m.rows:
        assert owner.setdefault(r["group"], r["source"]) == r["source"]  # a scene belongs to one pseudo-source
    assert_split_by_group(m, (16, 8), slack=2)


def test_official_split_kept_and_duplicates_never_straddle(tmp_path):
    root = tmp_path / "paper"
    for i, s in enumerate(("cc", "yfcc")):
        write_images(root / "train" / s, 6, (40 * i, 90, 200), seed=i)
        write_images(root / "val" / s, 3, (40 * i, 90, 200), seed=10 + i)
    m = build_manifest(cfg_with(f"data.sources=[{{name: p, kind: imagefolder, path: '{root}'}}]",
                                "data.group={regex: '(img_\\d+)'}", "data.per_source={train: 6, val: 3}").data)
    assert [r["split"] for r in m.rows if r["source"] == "cc"].count("val") == 3  # the official split, as given
    assert m.summary["groups"]["across_split"] == {"cc": 3, "yfcc": 3}  # img_000{0,1,2} in train/ and val/
    # Folder source, split by group: two photos share bytes -> one group, never on both sides.
    roots = {s: tmp_path / s for s in ("red", "blue")}
    for k, s in enumerate(roots):
        for g in range(6):
            write_images(roots[s] / f"g{g}", 3, (200 * k, 60, 60), seed=100 * k + g)
    shutil.copy(roots["red"] / "g0" / "img_0000.png", roots["red"] / "g5" / "copy.png")
    src = ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items())
    for seed in range(5):
        m = build_manifest(cfg_with(f"data.sources=[{src}]", "data.group={dir: 0}", f"data.seed={seed}",
                                    "data.per_source={train: 12, val: 6}").data)
        sha = {r["sha1"] for r in m.rows if r["item"].endswith("copy.png")}
        splits = {r["split"] for r in m.rows if r["sha1"] in sha}
        assert len(splits) <= 1, seed
        assert_split_by_group(m)


def test_parquet_and_hf_group_columns(tmp_path):
    """``{column: NAME}`` reads that column of a parquet file's row (one row-group read) or of an hf dataset."""
    from conftest import noise_png, write_parquet

    n = 24
    write_parquet(tmp_path / "pq" / "part-0.parquet", {
        "image": [{"bytes": noise_png(i), "path": f"{i}.png"} for i in range(n)],
        "src": ["a" if i % 2 else "b" for i in range(n)],
        "photo": [f"p{i % 6}" for i in range(n)]}, row_group_size=5)
    src = f"data.sources=[{{name: mix, kind: parquet, path: '{tmp_path / 'pq'}', source_column: src}}]"
    m = build_manifest(cfg_with(src, "data.group={column: photo}", "data.per_source={train: 8, val: 4}").data)
    assert_split_by_group(m, (8, 4), slack=2)
    for r in m.rows:  # the group is the photo column of the item's own row
        row = int(r["item"].split(":")[-1]) + 5 * int(r["item"].split("::")[1].split(":")[0])
        assert r["group"] == f"p{row % 6}"
    with pytest.raises(GroupError, match="no column 'uploader'"):
        build_manifest(cfg_with(src, "data.group={column: uploader}", "data.per_source={train: 8, val: 4}").data)

    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"image": [{"bytes": noise_png(100 + i), "path": None} for i in range(n)],
                                "photo": [f"q{i % 8}" for i in range(n)]},
                               features=datasets.Features({"image": datasets.Image(),
                                                           "photo": datasets.Value("string")})
                               ).save_to_disk(tmp_path / "hf")
    hf = f"{{name: h, kind: hf, path: '{tmp_path / 'hf'}'}}"
    m = build_manifest(cfg_with(f"data.sources=[{hf}]", "data.pseudo=2", "data.group={column: photo}",
                                "data.per_source={train: 8, val: 4}").data)
    assert_split_by_group(m)
    assert all(r["group"] == f"q{int(r['item'].rsplit(':', 1)[1]) % 8}" for r in m.rows)
