from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsbias.config import load_config
from dsbias.data import (
    DecodeError,
    Manifest,
    MixedDataset,
    ShortSourceError,
    build_manifest,
    create_eval_transform,
    decode_image,
    load_or_build_manifest,
)
from dsbias.data.sources import create_sources
from dsbias.data.toy import make_signature


def toy_cfg(*over: str):
    return load_config(None, ["data=toy", "data.per_source={train: 40, val: 10}", *over])


def folder_cfg(roots: dict[str, Path], *over: str):
    src = "[" + ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items()) + "]"
    return load_config(None, [f"data.sources={src}", *over])


def _stats(img: Image.Image) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    lap = a[1:-1, 1:-1] * 4 - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return np.concatenate([a.mean((0, 1)), [np.abs(lap).mean()]])


def _source_stats(cfg, n=150) -> dict[str, np.ndarray]:
    readers = create_sources(cfg.data)
    return {name: np.stack([_stats(r.read(str(i))[0]) for i in range(n)]) for name, r in readers.items()}


def test_toy_is_deterministic():
    cfg = toy_cfg()
    a = create_sources(cfg.data)["beta"].read("3")[0]
    b = create_sources(cfg.data)["beta"].read("3")[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    c = create_sources(toy_cfg("data.seed=1").data)["beta"].read("3")[0]
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_toy_sources_differ_with_bias_and_agree_without():
    """Mean colour and high-frequency energy: far apart at bias 0.5, within sampling error at bias 0."""

    def max_z(stats: dict[str, np.ndarray]) -> float:
        names = list(stats)
        z = 0.0
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = stats[names[i]], stats[names[j]]
                se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
                z = max(z, float(np.max(np.abs(a.mean(0) - b.mean(0)) / se)))
        return z

    assert max_z(_source_stats(toy_cfg())) > 8
    assert max_z(_source_stats(load_config(None, ["data=toy_null"]))) < 4


def test_toy_signature_bias_zero_is_identical():
    sigs = {make_signature(s, 3, 0.0, ["color", "noise", "blur", "jpeg", "size"], 64) for s in range(3)}
    assert len(sigs) == 1


def test_toy_size_signature_changes_native_size_only():
    cfg = toy_cfg("data.sources=[{name: a, kind: toy, signature: [size]}, {name: b, kind: toy, signature: [size]}]")
    m = build_manifest(cfg.data)
    sizes = {(r["source"], r["width"]) for r in m.rows}
    assert sizes == {("a", 96), ("b", 64)}


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


def _corrupt_files(root: Path) -> None:
    good = (root / "img_0000.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image")
    (root / "notes.txt").write_text("ignored: not an image extension")


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
    with pytest.raises(ShortSourceError, match="source 'red': 20 usable images, 23 asked"):
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


@pytest.mark.parametrize("payload,reason", [(b"", "empty"), (b"GIF89a-not-really", "not_an_image")])
def test_decode_errors(payload, reason):
    with pytest.raises(DecodeError) as e:
        decode_image(payload)
    assert e.value.reason == reason


def test_decode_refuses_decompression_bomb(tmp_path):
    p = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(p)
    with pytest.raises(DecodeError) as e:
        decode_image(p, max_pixels=300 * 299)
    assert e.value.reason == "too_large"


def test_decode_modes_become_rgb(tmp_path):
    cmyk = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(cmyk)
    img, info = decode_image(cmyk)
    assert img.mode == "RGB" and info.format == "JPEG"
    g16 = tmp_path / "g16.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(g16)
    img, _ = decode_image(g16)
    assert img.mode == "RGB" and 120 <= np.asarray(img)[0, 0, 0] <= 135  # mid-grey, not clipped white
