"""prepare.py writes shards the paper's way, records native size/format, and --reencode makes codecs uniform."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from conftest import noise_png, prepare_cfg, write_parquet
from PIL import Image

from dsbias.config import load_config
from dsbias.data.decode import content_hash
from dsbias.data.manifest import build_manifest
from dsbias.data.prepare import PrepareOptions, prepare, target_size
from dsbias.data.sources.registry import create_sources
from dsbias.data.sources.webdataset import ShardSource, parse_item


def _members(tar: Path) -> list[str]:
    with tarfile.open(tar) as tf:
        return tf.getnames()


def test_target_size_policies():
    assert target_size(800, 600, PrepareOptions()) == (666, 500)  # shorter side 600 > 500; 666.7 truncated
    assert target_size(300, 200, PrepareOptions()) is None  # kept as is
    assert target_size(300, 200, PrepareOptions(size=100)) == (150, 100)  # everything to one size
    assert target_size(300, 200, PrepareOptions(size=400)) == (600, 400)  # up too
    assert target_size(2000, 400, PrepareOptions(max_side=1000)) == (1000, 200)


def test_prepare_paper_policy_reads_back_with_native_size(tmp_path):
    cfg = prepare_cfg(tmp_path, tmp_path / "shards")
    result = prepare(cfg.data, cfg.out, PrepareOptions(shard_size=2))
    assert result["a"]["written"] == 3 and result["a"]["skipped"] == {"truncated": 1}
    assert result["a"]["shards"] == 2
    data = load_config(None, [f"data={tmp_path / 'shards' / 'data.yaml'}", "data.dedup=ignore"]).data
    assert [s.kind for s in data.sources] == ["webdataset", "webdataset"]
    m = build_manifest(data)
    native = {(r["width"], r["height"], r["format"]) for r in m.rows if r["source"] == "a"}
    assert native == {(800, 600, "JPEG"), (300, 200, "PNG"), (520, 700, "WEBP")}  # as collected
    readers = create_sources(data)
    for r in m.rows:
        body, meta = readers[r["origin"]].read_member(r["item"])
        stored = Image.open(io.BytesIO(body))
        original = tmp_path / r["source"] / meta["item"]
        if meta["original_width"] == 800:
            assert stored.size == (666, 500) and stored.format == "PNG"  # resized, bicubic, PNG as in the paper
        elif meta["original_width"] == 520:
            assert stored.size == (500, 673) and stored.format == "PNG"  # shorter side 520 > 500 too
        else:
            assert body == original.read_bytes()  # small images keep their original bytes


def test_prepare_reencode_makes_formats_uniform(tmp_path):
    cfg = prepare_cfg(tmp_path, tmp_path / "jpeg")
    prepare(cfg.data, cfg.out, PrepareOptions(reencode="jpeg", quality=90, size=64))
    names = _members(next((tmp_path / "jpeg" / "a").glob("*.tar")))
    assert {n.split(".", 1)[1] for n in names} == {"jpg", "json"}
    src = ShardSource("a", str(tmp_path / "jpeg" / "a" / "*.tar"), 10**8)
    for item in src.list_items():
        body, meta = src.read_member(item)
        img = Image.open(io.BytesIO(body))
        assert img.format == "JPEG" and min(img.size) == 64 and meta["format"] == "JPEG"
        assert meta["original_format"] in ("JPEG", "PNG", "WEBP")
        assert parse_item(item)[1].endswith(".jpg")


def test_prepare_parquet_keeps_the_native_fields_and_the_datasets_layout(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    cfg = prepare_cfg(tmp_path, tmp_path / "pq")
    result = prepare(cfg.data, cfg.out, PrepareOptions(format="parquet", shard_size=2, row_group_size=1))
    assert result["a"]["written"] == 3 and result["a"]["shards"] == 2 and result["a"]["skipped"] == {"truncated": 1}
    files = sorted((tmp_path / "pq" / "a").glob("*.parquet"))
    assert [f.name for f in files] == ["a-00000.parquet", "a-00001.parquet"]
    assert [pq.read_metadata(f).num_row_groups for f in files] == [2, 1]  # row groups of one image
    features = datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
    assert isinstance(features["image"], datasets.Image)  # datasets decodes the column as images
    data = load_config(None, [f"data={tmp_path / 'pq' / 'data.yaml'}", "data.dedup=ignore"]).data
    assert [(s.name, s.kind) for s in data.sources] == [("a", "parquet"), ("b", "parquet")]
    m = build_manifest(data)
    native = {(r["width"], r["height"], r["format"]) for r in m.rows if r["source"] == "a"}
    assert native == {(800, 600, "JPEG"), (300, 200, "PNG"), (520, 700, "WEBP")}  # as collected, as with tar
    readers = create_sources(data)
    for r in m.rows:
        img = readers[r["origin"]].read(r["item"])[0]
        rows = pq.read_table(tmp_path / "pq" / r["source"] / r["item"].split("::")[0]).to_pylist()
        stored = next(x for x in rows if content_hash(x["image"]["bytes"]) == r["sha1"])  # sha1 of the stored bytes
        assert img.size == (stored["width"], stored["height"]) and stored["source"] == r["source"]
        if stored["original_width"] == 300:  # small images keep their original bytes
            assert stored["image"]["bytes"] == (tmp_path / r["source"] / stored["item"]).read_bytes()
        else:  # resized, PNG as in the paper
            assert stored["format"] == "PNG" and min(img.size) == 500


def test_prepare_reads_parquet_sources_too(tmp_path):
    images = [noise_png(i) for i in range(7)]
    write_parquet(tmp_path / "in" / "0.parquet", {"image": images[:6] + [None]}, row_group_size=4)
    sources = f"[{{name: p, kind: parquet, path: '{tmp_path / 'in'}'}}, {{name: t, kind: toy}}]"
    data = load_config(None, [f"data.sources={sources}"]).data
    result = prepare(data, tmp_path / "out", PrepareOptions(limit=6, format="parquet", row_group_size=4))
    assert result["p"]["written"] == 6 and result["p"]["skipped"] == {"null_image": 1}
    back = create_sources(load_config(None, [f"data={tmp_path / 'out' / 'data.yaml'}"]).data)["p"]
    assert sorted(back.read_bytes(i) for i in back.sample_order(0)) == sorted(images[:6])  # the bytes as stored
