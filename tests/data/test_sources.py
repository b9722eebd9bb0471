"""Source kinds read the same pixels as a direct reading; imagefolder/list entries expand; shards are robust."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import png_bytes, write_images, write_parquet, write_shard
from PIL import Image

from dsbias.config import ConfigError, load_config
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.registry import create_sources, expand_sources
from dsbias.data.sources.webdataset import expand_braces, find_shards, index_shard, parse_item


def cfg_with(sources: str, *over: str):
    return load_config(None, [f"data.sources={sources}", *over])


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


@pytest.fixture
def paper_root(tmp_path: Path) -> Path:
    """The paper's layout: root/{train,val}/{yfcc,cc,datacomp}/ (sources listed out of alphabetical order)."""
    root = tmp_path / "paper"
    for i, src in enumerate(["yfcc", "cc", "datacomp"]):
        write_images(root / "train" / src, 8, (40 * i, 90, 200 - 40 * i), seed=i)
        write_images(root / "val" / src / "sub", 4, (40 * i, 90, 200 - 40 * i), seed=10 + i)  # nested is fine
    return root


def _wds_sample(rng, i: int) -> bytes:
    return png_bytes(rng.integers(0, 255, (10 + i % 3, 12, 3), dtype=np.uint8))


def test_imagefolder_expands_sorted_and_uses_official_split(paper_root):
    cfg = cfg_with(f"[{{name: paper, kind: imagefolder, path: '{paper_root}'}}]", "data.per_source={train: 5, val: 3}")
    assert [s.name for s in expand_sources(cfg.data).sources] == ["cc", "datacomp", "yfcc"]
    m = build_manifest(cfg.data)
    assert m.sources == ["cc", "datacomp", "yfcc"]
    for r in m.rows:
        assert r["item"].startswith(f"{r['split']}/{r['source']}/")  # train rows from train/, val from val/
        direct = pixels(Image.open(paper_root / r["item"]))
        assert np.array_equal(pixels(create_sources(cfg.data)[r["origin"]].read(r["item"])[0]), direct)
    off = build_manifest(cfg_with(f"[{{name: p, kind: imagefolder, path: '{paper_root}'}}]",
                                  "data.per_source={train: 5, val: 3}", "data.official_split=false").data)
    assert any(r["item"].startswith("train/") for r in off.rows if r["split"] == "val")


def test_imagefolder_select_and_root_without_split(paper_root, tmp_path):
    one = cfg_with(f"[{{name: Y, kind: imagefolder, path: '{paper_root}', select: [yfcc]}}, "
                   f"{{name: C, kind: imagefolder, path: '{paper_root}', select: [cc]}}]")
    assert [s.name for s in expand_sources(one.data).sources] == ["Y", "C"]  # one selected: keeps its name
    with pytest.raises(ConfigError, match=r"select: \['laion'\] not found"):
        expand_sources(cfg_with(f"[{{name: p, kind: imagefolder, path: '{paper_root}', select: [cc, laion]}}]").data)
    entry = f"kind: imagefolder, path: '{paper_root}'"
    twice = f"[{{name: p, {entry}}}, {{name: q, {entry}}}]"
    with pytest.raises(ConfigError, match="occur twice after expanding"):
        expand_sources(cfg_with(twice).data)
    with pytest.raises(ConfigError, match="needs exactly one source, got 3"):
        expand_sources(cfg_with(f"[{{name: p, kind: imagefolder, path: '{paper_root}'}}]", "data.pseudo=3").data)
    flat = tmp_path / "flat"
    write_images(flat / "a", 6, (200, 0, 0))
    write_images(flat / "b", 6, (0, 0, 200))
    m = build_manifest(cfg_with(f"[{{name: f, kind: imagefolder, path: '{flat}'}}]",
                                "data.per_source={train: 4, val: 2}").data)
    assert m.sources == ["a", "b"] and len({r["item"] for r in m.rows}) == 12  # random split, disjoint


def test_list_txt_and_csv_with_source_column(image_folders, tmp_path):
    red = sorted(image_folders["red"].glob("*.png"))
    blue = sorted(image_folders["blue"].glob("*.png"))
    txt = tmp_path / "red.txt"
    txt.write_text("# red images\n" + "\n".join(str(p.relative_to(tmp_path)) for p in red) + "\n\n")
    csv = tmp_path / "lists" / "mix.csv"
    csv.parent.mkdir()
    csv.write_text("path,source,caption\n" + "".join(f"{p},{'r' if p in red else 'b'},x\n" for p in red + blue))
    cfg = cfg_with(f"[{{name: mix, kind: list, path: '{csv}'}}]", "data.per_source={train: 6, val: 2}")
    assert [s.name for s in expand_sources(cfg.data).sources] == ["b", "r"]
    m = build_manifest(cfg.data)
    readers = create_sources(cfg.data)
    for r in m.rows:
        assert ("blue" in r["item"]) == (r["source"] == "b")
        assert np.array_equal(pixels(readers[r["origin"]].read(r["item"])[0]), pixels(Image.open(r["item"])))
    cfg2 = cfg_with(f"[{{name: red, kind: list, path: '{txt}'}}, {{name: blue, kind: folder, "
                    f"path: '{image_folders['blue']}'}}]", "data.per_source={train: 6, val: 2}")
    m2 = build_manifest(cfg2.data)
    rel = [r["item"] for r in m2.rows if r["source"] == "red"]
    assert all(not Path(i).is_absolute() for i in rel)  # relative to the list file's folder
    got = create_sources(cfg2.data)["red"].read(rel[0])[0]
    assert np.array_equal(pixels(got), pixels(Image.open(tmp_path / rel[0])))


def test_list_parquet_reads_its_path_and_source_columns(image_folders, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    red = sorted(image_folders["red"].glob("*.png"))
    blue = sorted(image_folders["blue"].glob("*.png"))
    lst = write_parquet(tmp_path / "lists" / "mix.parquet", {
        "path": [str(p) for p in red + blue], "source": ["r"] * len(red) + ["b"] * len(blue),
        "embedding": [[0.5] * 64] * (len(red) + len(blue))}, row_group_size=8)
    read, real = [], pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: read.append(k.get("columns")) or real(*a, **k))
    cfg = cfg_with(f"[{{name: mix, kind: list, path: '{lst}'}}]", "data.per_source={train: 6, val: 2}")
    assert [s.name for s in expand_sources(cfg.data).sources] == ["b", "r"]
    assert read == [["path", "source"]]  # not the embeddings (or images) a list may carry
    m = build_manifest(cfg.data)
    for r in m.rows:
        assert ("blue" in r["item"]) == (r["source"] == "b")
        got = create_sources(cfg.data)[r["origin"]].read(r["item"])[0]
        assert np.array_equal(pixels(got), pixels(Image.open(r["item"])))
    with pytest.raises(ValueError, match=r"no column 'file' \(columns: \['path', 'source', 'embedding'\]\)"):
        expand_sources(cfg_with(f"[{{name: m, kind: list, path: '{lst}', path_column: file}}]").data)


def test_webdataset_reads_members_by_offset(tmp_path):
    rng = np.random.default_rng(0)
    members = {}
    for s in range(2):
        ms = []
        for i in range(5):
            key = f"s{s}/{i:04d}"  # keys with a folder, as some writers make them
            members[f"{s}:{key}"] = _wds_sample(rng, i)
            ms.append((f"{key}.png", members[f"{s}:{key}"]))
            if i % 2 == 0:
                meta = {"original_width": 700 + i, "original_height": 500, "original_format": "JPEG"}
                ms.append((f"{key}.json", json.dumps(meta).encode()))
            ms.append((f"{key}.txt", b"a caption"))
        write_shard(tmp_path / "cc" / f"{s:05d}.tar", ms)
    assert expand_braces("/d/{00000..00002}.tar") == ["/d/00000.tar", "/d/00001.tar", "/d/00002.tar"]
    assert len(find_shards(str(tmp_path / "cc" / "*.tar"))) == 2
    pattern = str(tmp_path / "cc" / "{00000..00001}.tar")
    cfg = cfg_with(f"[{{name: cc, kind: webdataset, path: '{pattern}'}}, {{name: cc2, kind: webdataset, "
                   f"path: '{tmp_path}/cc/*.tar'}}]", "data.per_source={train: 7, val: 3}", "data.dedup=ignore")
    m = build_manifest(cfg.data)
    src = create_sources(cfg.data)["cc"]
    assert len(src.list_items()) == 10
    for r in m.rows:
        shard, member, off, size, meta = parse_item(r["item"])
        key = f"{shard[:5].lstrip('0') or '0'}:{member.rsplit('.', 1)[0]}"
        assert np.array_equal(pixels(src.read(r["item"])[0]), pixels(Image.open(io.BytesIO(members[key]))))
        i = int(member[-8:-4])
        assert (r["width"], r["format"]) == ((700 + i, "JPEG") if i % 2 == 0 else (12, "PNG"))
        assert (meta is not None) == (i % 2 == 0)


def test_webdataset_bad_members_are_skipped_not_fatal(tmp_path):
    rng = np.random.default_rng(1)
    good = [(f"{i:04d}.jpg", _wds_sample(rng, i)) for i in range(6)]  # PNG bytes under .jpg: decoded by content
    bad = [("0100.jpg", b"\xff\xd8\xff garbage"), ("../0101.png", good[0][1]), ("/abs/0102.png", good[1][1]),
           ("0103.webp", b"")]
    write_shard(tmp_path / "a" / "00000.tar", good[:3] + bad + good[3:])
    shard_b = write_shard(tmp_path / "b" / "00000.tar", [(f"{i:04d}.png", _wds_sample(rng, i)) for i in range(8)])
    raw = bytearray(shard_b.read_bytes())
    fourth = parse_item(sorted(index_shard(shard_b, "x")[0])[3])[2] - 512  # header of the 4th member
    raw[fourth: fourth + 100] = b"\x07" * 100  # break a header in the middle of the shard
    shard_b.write_bytes(bytes(raw))
    sources = (f"[{{name: a, kind: webdataset, path: '{tmp_path}/a/*.tar'}}, "
               f"{{name: b, kind: webdataset, path: '{tmp_path}/b/00000.tar'}}]")
    cfg = cfg_with(sources, "data.per_source={train: 5, val: 1}", "data.allow_fewer=true", "data.dedup=ignore")
    src = create_sources(cfg.data)["a"]
    items = src.list_items()
    assert len(items) == 8 and not any(".." in i or "/abs" in i for i in items)
    assert src.ignored["escaping_path"] == 2
    b_items = create_sources(cfg.data)["b"].list_items()
    assert len(b_items) == 3  # the members before the broken header survive
    m = build_manifest(cfg.data)
    assert m.summary["skipped"]["a"] == {"not_an_image": 1, "empty": 1, "escaping_path": 2}
    assert m.summary["obtained"]["a"] == {"train": 5, "val": 1}
    assert m.summary["skipped"]["b"].get("corrupt_header") == 1
