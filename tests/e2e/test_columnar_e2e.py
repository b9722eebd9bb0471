"""End to end: tools/prepare.py --format parquet from folders, then probe/classify.py on a mix of a parquet source,
a save_to_disk dataset and a folder; parquet and hf sources in spawned DataLoader workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from conftest import noise_png, write_images, write_parquet

from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest
from dsbias.data.views import create_eval_transform

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
SMALL = ["data.image_size=32", "data.num_workers=2", "model=convnext_atto_1_10", "method.supervised.augment=none",
         "train.log_with=[]", "train.log_every=5", "classify.eval_every=0", "train.batch_size=16",
         "train.samples=96", "data.per_source={train: 24, val: 8}"]


def run(*args: str) -> str:
    p = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


@pytest.mark.slow
def test_prepared_parquet_hf_and_folder_train_together(tmp_path):
    write_images(tmp_path / "red", 40, (200, 60, 60), seed=1)
    write_images(tmp_path / "blue", 40, (60, 60, 200), seed=2)
    write_images(tmp_path / "green", 40, (60, 200, 60), seed=3)
    run("tools/prepare.py", f"data.sources=[{{name: red, kind: folder, path: '{tmp_path / 'red'}'}}, "
        f"{{name: blue, kind: folder, path: '{tmp_path / 'blue'}'}}]", "--out", str(tmp_path / "pq"),
        "--format", "parquet", "--shard-size", "16", "--row-group-size", "4", "--size", "16")
    prepared = load_config(None, [f"data={tmp_path / 'pq' / 'data.yaml'}"]).data.sources
    blue = next(s for s in prepared if s.name == "blue")
    # The same blue images, saved by datasets, stand in for a second dataset (they differ in nothing but format).
    ds = datasets.Dataset.from_parquet(sorted(str(f) for f in (tmp_path / "pq" / "blue").glob("*.parquet")),
                                       cache_dir=str(tmp_path / "hf_cache"))
    ds.save_to_disk(str(tmp_path / "hf"))
    sources = (f"[{{name: red, kind: parquet, path: '{prepared[0].path}'}}, "
               f"{{name: blue, kind: hf, path: '{tmp_path / 'hf'}', source_column: ''}}, "
               f"{{name: green, kind: folder, path: '{tmp_path / 'green'}'}}]")
    assert blue.kind == "parquet"
    out = tmp_path / "run"
    stdout = run("probe/classify.py", "--out", str(out), f"data.sources={sources}", "data.dedup=ignore", *SMALL)
    assert "top-1" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["sources"] == ["red", "blue", "green"] and m["n_val"] == 24 and m["n_train"] == 72
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    items = {r["source"]: r["item"] for r in rows}
    assert "::" in items["red"] and items["blue"].startswith("train:") and items["green"].endswith(".png")
    # Stored at 16 px, native 24 px PNG: the manifest reports the native image, from the prepared columns.
    assert {(r["width"], r["format"]) for r in rows if r["source"] == "red"} == {(24, "PNG")}


@pytest.mark.slow
def test_spawned_workers_reopen_parquet_and_hf_sources(tmp_path):
    write_parquet(tmp_path / "pq" / "0.parquet", {"image": [noise_png(i) for i in range(10)]}, row_group_size=3)
    datasets.Dataset.from_dict({"image": [{"bytes": noise_png(50 + i), "path": None} for i in range(10)]},
                               features=datasets.Features({"image": datasets.Image()})).save_to_disk(tmp_path / "hf")
    sources = f"[{{name: p, kind: parquet, path: '{tmp_path}/pq'}}, {{name: h, kind: hf, path: '{tmp_path}/hf'}}]"
    cfg = load_config(None, [f"data.sources={sources}", "data.per_source={train: 8, val: 2}"])
    m = build_manifest(cfg.data)
    ds = MixedDataset.from_config(m, "train", create_eval_transform(8), cfg.data)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    got = {int(i): x for xs, _, idx in loader for i, x in zip(idx, xs)}
    assert sorted(got) == sorted(m.split_indices("train").tolist())
    assert all(torch.equal(got[int(ds.index[k])], ds[k][0]) for k in range(len(ds)))  # as read in this process
