"""Sampling is uniform and seeded; de-dup finds and drops planted duplicates; manifests round-trip; the
map-style dataset splits shard items across 2 processes x 2 workers without overlap or loss."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import png_bytes, write_images, write_shard
from PIL import Image
from scipy.stats import chisquare
from torch.utils.data.distributed import DistributedSampler

from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.dedup import plan_dedup
from dsbias.data.loader import create_loader
from dsbias.data.manifest import build_manifest, load_or_build_manifest, make_manifest
from dsbias.data.sources.registry import create_sources
from dsbias.data.views import create_eval_transform


def cfg_with(sources: str, *over: str):
    return load_config(None, [f"data.sources={sources}", *over])


def folders(roots: dict[str, Path]) -> str:
    return "[" + ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items()) + "]"


def _planted(tmp_path: Path) -> dict[str, Path]:
    roots = {"red": tmp_path / "red", "blue": tmp_path / "blue"}
    write_images(roots["red"], 20, (200, 60, 60), seed=1)
    write_images(roots["blue"], 20, (60, 60, 200), seed=2)
    shutil.copy(roots["red"] / "img_0003.png", roots["blue"] / "from_red.png")  # cross-source
    shutil.copy(roots["red"] / "img_0005.png", roots["red"] / "twin.png")  # red twin
    shutil.copy(roots["blue"] / "img_0007.png", roots["blue"] / "twin.png")  # blue twin
    return roots


def _where(m, name: str) -> list[tuple[str, str]]:
    return sorted((r["source"], r["split"]) for r in m.rows if Path(r["item"]).name == name)


def test_sample_order_is_uniform_and_seeded(tmp_path):
    n, k, draws = 40, 5, 2000
    lst = tmp_path / "l.txt"
    lst.write_text("\n".join(f"img_{i:03d}.jpg" for i in range(n)))  # order only: nothing is read
    cfg = cfg_with(f"[{{name: a, kind: list, path: '{lst}'}}, {{name: b, kind: list, path: '{lst}'}}]")
    src = create_sources(cfg.data)["a"]
    assert src.sample_order(3) == src.sample_order(3) != src.sample_order(4)
    assert src.sample_order(3) != create_sources(cfg.data)["b"].sample_order(3)  # sources draw independently
    counts = Counter(x for seed in range(draws) for x in src.sample_order(seed)[:k])
    assert len(counts) == n  # never "the first N files"
    p = chisquare([counts[f"img_{i:03d}.jpg"] for i in range(n)]).pvalue
    assert p > 1e-3, f"inclusion counts not uniform (chi-square p={p:.2g})"


def test_manifest_takes_the_first_usable_items_of_the_seeded_order(image_folders):
    cfg = cfg_with(folders(image_folders), "data.per_source={train: 6, val: 2}", "data.seed=7")
    m = build_manifest(cfg.data)
    order = create_sources(cfg.data)["red"].sample_order(7)
    red = [r for r in m.rows if r["source"] == "red"]
    assert [r["item"] for r in red] == order[:8]
    assert [r["split"] for r in red] == ["train"] * 6 + ["val"] * 2
    assert all(len(r["sha1"]) == 40 and r["mode"] == "RGB" for r in m.rows)
    img = create_sources(cfg.data)["red"].read(red[0]["item"])[0]  # folder items are relative to the root
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(image_folders["red"] / red[0]["item"]).convert("RGB")))


def test_plan_dedup_kinds_and_policy():
    entries = [("a", "train", "h1", "a1"), ("b", "val", "h1", "b1"),  # cross-source (and cross-split)
               ("a", "train", "h2", "a2"), ("a", "val", "h2", "a3"),  # cross-split in one source
               ("b", "train", "h3", "b2"), ("b", "train", "h3", "b3"),  # within-source
               ("a", "train", "h4", "a4")]
    plan = plan_dedup(entries, "drop")
    assert plan.found == {"h1": "cross_source", "h2": "cross_split", "h3": "within_source"}
    assert plan.drop == [0, 1, 3, 5] and plan.banned == {"h1"}  # within-source: the first copy stays
    assert plan_dedup(entries, "report").drop == [] and len(plan_dedup(entries, "report").found) == 3
    assert plan_dedup(entries, "ignore").found == {}


def test_dedup_finds_and_drops_planted_duplicates(tmp_path):
    roots = _planted(tmp_path)
    per = "data.per_source={train: 14, val: 3}"
    # Find a seed that samples every planted copy, the red twins across splits and the blue twins in one split.
    for seed in range(300):
        rep = build_manifest(cfg_with(folders(roots), per, f"data.seed={seed}", "data.dedup=report").data)
        d = rep.summary["duplicates"]
        kinds = {e["kind"]: e["rows"][0][0] for e in d["examples"]}
        if (d["cross_source"], d["cross_split"], d["within_source"]) == (1, 1, 1) and kinds["cross_split"] == "red":
            break
    else:
        pytest.fail("no seed samples all planted duplicates")
    assert len(rep) == 2 * 17 and d["dropped"] == {}
    m = build_manifest(cfg_with(folders(roots), per, f"data.seed={seed}").data)
    d = m.summary["duplicates"]
    assert (d["policy"], d["cross_source"], d["cross_split"], d["within_source"]) == ("drop", 1, 1, 1)
    assert d["dropped"] == {"red": 2, "blue": 2}
    assert m.summary["obtained"] == {s: {"train": 14, "val": 3} for s in ("red", "blue")}  # refilled
    by_hash: dict[str, set] = {}
    for r in m.rows:
        by_hash.setdefault(r["sha1"], set()).add((r["source"], r["split"]))
    assert all(len({s for s, _ in v}) == 1 for v in by_hash.values())  # no image under two labels
    red_twin = [sp for (src, sp) in _where(m, "twin.png") + _where(m, "img_0005.png") if src == "red"]
    assert red_twin == ["train"]  # the train copy stays, the val copy went
    assert _where(m, "from_red.png") == [] and ("red", "train") not in _where(m, "img_0003.png")
    assert ("red", "val") not in _where(m, "img_0003.png")  # both cross-source copies went
    blue_twin = [x for x in _where(m, "twin.png") + _where(m, "img_0007.png") if x[0] == "blue"]
    assert len(blue_twin) == 1  # within-source: one copy stays
    rows_again = build_manifest(cfg_with(folders(roots), per, f"data.seed={seed}").data).rows
    assert rows_again == m.rows  # replacements come from the seeded order


def test_manifest_tool_round_trip(image_folders, tmp_path):
    cfg = cfg_with(folders(image_folders), "data.per_source={train: 6, val: 2}", "data.seed=3")
    made, path = make_manifest(cfg.data, tmp_path / "mix")
    assert path == tmp_path / "mix" / "manifest.jsonl" and path.with_suffix(".json").exists()
    run = cfg_with(folders(image_folders), f"data.manifest={path}", "data.per_source={train: 1, val: 1}")
    used = load_or_build_manifest(run.data, tmp_path / "run" / "manifest.jsonl")
    assert used.rows == made.rows  # the manifest decides, not per_source or the seed
    again = load_or_build_manifest(run.data, tmp_path / "run" / "manifest.jsonl")
    assert again.rows == made.rows and again.summary["copied_from"] == str(path)
    ds = MixedDataset.from_config(used, "val", create_eval_transform(16), run.data)
    assert len(ds) == 4 and tuple(ds[0][0].shape) == (3, 16, 16)
    swapped = "[" + ", ".join(f"{{name: {n}, kind: folder, path: '{image_folders[n]}'}}" for n in ("blue", "red")) + "]"
    with pytest.raises(ValueError, match="differ from the config's"):
        load_or_build_manifest(cfg_with(swapped, f"data.manifest={path}").data, tmp_path / "r2" / "manifest.jsonl")
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "red", moved / "red")
    shutil.copytree(tmp_path / "blue", moved / "blue")
    relocated = cfg_with(folders({n: moved / n for n in ("red", "blue")}), f"data.manifest={path}")
    ds = MixedDataset.from_config(load_or_build_manifest(relocated.data, tmp_path / "r3" / "manifest.jsonl"),
                                  "train", create_eval_transform(16), relocated.data)
    assert len(ds) == 12 and ds[11][0].shape[0] == 3  # items are relative: the data may move


def test_shard_items_split_over_2_processes_x_2_workers(tmp_path):
    rng = np.random.default_rng(0)
    for s in ("a", "b"):
        for k in range(2):
            write_shard(tmp_path / s / f"{k:05d}.tar",
                        [(f"{k}{i:03d}.png", png_bytes(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)))
                         for i in range(7)])
    cfg = cfg_with(f"[{{name: a, kind: webdataset, path: '{tmp_path}/a/{{00000..00001}}.tar'}}, "
                   f"{{name: b, kind: webdataset, path: '{tmp_path}/b/*.tar'}}]", "data.per_source={train: 11, val: 2}")
    m = build_manifest(cfg.data)
    ds = MixedDataset.from_config(m, "train", create_eval_transform(8), cfg.data)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = create_loader(ds, batch_size=3, num_workers=2, sampler=sampler)
        seen.append([int(i) for _, _, idx in loader for i in idx])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(m.split_indices("train").tolist())  # nothing lost or repeated
