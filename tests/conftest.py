"""Shared fixtures and helpers: image folders, shards and a tiny trainable method, all made in the test (no
downloads). Test modules import the helpers with ``from conftest import ...``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # nothing in the tests may reach the network
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Run every test from the repo root so ``configs/`` presets resolve as they do for users."""
    monkeypatch.chdir(REPO)


def write_images(folder: Path, n: int, colour: tuple[int, int, int], size: int = 24, seed: int = 0) -> list[Path]:
    """Write ``n`` small noisy PNGs of a base colour into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        p = folder / f"img_{i:04d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def image_folders(tmp_path: Path) -> dict[str, Path]:
    """Two folder sources of 20 images each (red-ish and blue-ish)."""
    roots = {"red": tmp_path / "red", "blue": tmp_path / "blue"}
    write_images(roots["red"], 20, (200, 60, 60), seed=1)
    write_images(roots["blue"], 20, (60, 60, 200), seed=2)
    return roots


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG-encode an ``[H, W, 3]`` uint8 array."""
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Write an uncompressed tar with exactly these ``(name, bytes)`` members (names taken verbatim)."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def write_parquet(path: Path, columns: dict[str, list], row_group_size: int, schema=None) -> Path:
    """Write a parquet file of these columns (an image column may be ``{bytes, path}`` dicts or bytes) with
    row groups of ``row_group_size`` rows, uncompressed (so tests can find and break a row group's bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns) if schema is None else pa.Table.from_pydict(columns, schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size, compression="none")
    return path


def noise_png(seed: int, size: int = 12) -> bytes:
    """A small PNG of seeded noise (a different image for every seed)."""
    return png_bytes(np.random.default_rng(seed).integers(0, 255, (size, size + seed % 3, 3), dtype=np.uint8))


# A tiny run: a 1-block ViT on 16-px toy images, a few steps (engine, resume and extraction tests).
TINY_RUN = ["data=toy", "data.per_source={train: 16, val: 4}", "data.image_size=16", "data.num_workers=0",
            "model.name=vit_tiny_patch16_224", "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}",
            "train.batch_size=8", "train.samples=64", "train.log_every=1", "train.log_with=[]",
            "optim.warmup_samples=16", "optim.blr=0.05"]


def noisy_method(cfg, num_sources):
    """Test method: random flips (data RNG) and dropout (model RNG), so exact resume is a real check."""
    from torch import nn
    from torchvision import transforms as T

    from dsbias.methods.base import MethodBase
    from dsbias.models.backbones import create_backbone

    class NoisyClassifier(MethodBase):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = create_backbone(cfg.model, cfg.data.image_size)
            self.drop = nn.Dropout(0.3)
            self.head = nn.Linear(self.backbone.num_features, num_sources)

        def create_train_transform(self):
            return T.Compose([T.RandomResizedCrop(16, scale=(0.5, 1)), T.RandomHorizontalFlip(), T.ToTensor()])

        def forward(self, batch):
            x, y, _ = batch
            logits = self.head(self.drop(self.backbone(x)))
            return {"loss": nn.functional.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}

    return NoisyClassifier()


def train_tiny(out, *over):
    """Train the noisy test method with the engine in ``out``; returns ``cfg, run, accelerator, manifest,
    method, summary``."""
    import torch

    from dsbias.config import load_config
    from dsbias.data.dataset import MixedDataset
    from dsbias.engine.loop import train
    from dsbias.pipelines.stages import build_data, prepare_run
    from dsbias.runs import unlock_run

    cfg = load_config(None, [*TINY_RUN, f"out={out}", *over])
    run, acc = prepare_run(cfg)
    manifest = build_data(cfg, run, acc)
    torch.manual_seed(0)
    method = noisy_method(cfg, len(manifest.sources))
    ds = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
    summary = train(cfg, method, ds, run, acc)
    unlock_run(run)  # the run is over (a script's process would end here); a subprocess may reopen the dir
    return cfg, run, acc, manifest, method, summary


def prepare_cfg(tmp_path: Path, out: Path):
    """Two folder sources of mixed sizes and formats (and one broken file each), for tools/prepare.py."""
    from dsbias.config import load_config

    a, b = write_prepare_images(tmp_path / "a", 0), write_prepare_images(tmp_path / "b", 1)
    assert a and b
    return load_config(None, [f"data.sources=[{{name: a, kind: folder, path: '{tmp_path / 'a'}'}}, "
                              f"{{name: b, kind: folder, path: '{tmp_path / 'b'}'}}]", f"out={out}",
                              "data.per_source={train: 2, val: 1}", "data.dedup=ignore"])


def write_prepare_images(root: Path, seed: int) -> dict[str, Path]:
    """A big JPEG, a small PNG, a tall WebP and a broken JPEG in ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    files = {"big.jpg": (600, 800, "JPEG"), "small.png": (200, 300, "PNG"), "tall.webp": (700, 520, "WEBP")}
    out = {}
    for name, (h, w, fmt) in files.items():
        arr = rng.integers(0, 255, (h // 10, w // 10, 3), dtype=np.uint8)
        Image.fromarray(arr).resize((w, h)).save(root / name, fmt)
        out[name] = root / name
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return out


TINY_SSL = ["data=toy", "data.per_source={train: 8, val: 4}", "data.image_size=16", "data.num_workers=0",
        "model=vit_tiny", "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}",
        "method.mae.decoder_dim=16", "method.mae.decoder_heads=2", "method.mae.decoder_depth=1",
        "method.mocov3.proj_hidden_dim=32", "method.mocov3.pred_hidden_dim=32", "method.mocov3.proj_dim=16",
        "train.batch_size=4", "train.samples=24", "train.log_every=1", "train.log_with=[]", "train.extract=false",
        "optim.warmup_samples=8", "optim.blr=0.05"]


def make_features(root, n=(300, 60), dim=16, sources=("a", "b", "c"), shift=3.0, seed=0, val_labels=None):
    """A features dir of Gaussian blobs, one per source, ``shift`` apart (0: identical distributions)."""
    from dsbias.features.store import write_meta, write_split

    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(len(sources), dim)) * shift
    start = 0
    for split, m in zip(("train", "val"), n):
        y = rng.integers(0, len(sources), m) if split == "train" or val_labels is None else val_labels
        x = (rng.normal(size=(m, dim)) + mu[y]).astype(np.float32)
        write_split(root, split, x, y, np.arange(start, start + m))
        start += m
    write_meta(root, {"dim": dim, "sources": list(sources), "backbone": "toy_vit", "checkpoint_sha256": "abc123"})
    return root


# Extraction with a frozen backbone on a few 32-px toy images, cut into small blocks (frozen-backbone and resume
# tests).
TINY_EXTRACT = ["data=toy", "data.per_source={train: 12, val: 6}", "data.image_size=32", "data.num_workers=0",
                "extract.batch_size=4", "extract.block_batches=2", "train.log_with=[]"]


def extract_cli(out, *argv):
    """``ssl/extract.py --out OUT [argv...]`` in this process, on :data:`TINY_EXTRACT`; returns the exit code."""
    from dsbias.cli.extract import main

    return main(["--out", str(out), *TINY_EXTRACT, *map(str, argv)])


def manifest_images(run_dir, split):
    """The decoded images of a run's manifest split, in row order (what extraction read)."""
    from dsbias.config import load_config
    from dsbias.data.manifest import Manifest
    from dsbias.data.sources.registry import create_sources
    from dsbias.runs import RunDir

    run = RunDir.at(run_dir)
    manifest, readers = Manifest.load(run.manifest), create_sources(load_config(run.config).data)
    return [readers[manifest.rows[i]["origin"]].read(manifest.rows[i]["item"])[0]
            for i in manifest.split_indices(split)]


def make_report_run(root: Path, features: bool = True, classifier: bool = True, leak: bool = True) -> Path:
    """A tiny made-up run dir with every file a report page reads (no training): config and manifest of three
    toy sources (8 val images each), a classifier's metrics.json, val_probs.npy and log.jsonl, features with a
    linear probe result and its random-init control, baselines.json, leakage.json and provenance.json."""
    import json

    from dsbias.config import load_config
    from dsbias.data.manifest import load_or_build_manifest
    from dsbias.features.store import leakage_path, write_meta, write_split
    from dsbias.runs import RunDir, provenance, save_npy, write_json, write_text
    from dsbias.stats import classification_report
    from dsbias.typedconfig import dump_yaml

    cfg = load_config(None, ["data=toy", "data.per_source={train: 12, val: 8}", "data.image_size=16", f"out={root}"])
    run = RunDir.at(root)
    write_text(run.config, dump_yaml(cfg))
    m = load_or_build_manifest(cfg.data, run.manifest)
    rng = np.random.default_rng(0)
    labels = m.labels()
    tr, va = m.split_indices("train"), m.split_indices("val")
    s = len(m.sources)

    def predict(y: np.ndarray, right: float) -> np.ndarray:
        return np.where(rng.random(y.size) < right, y, rng.integers(0, s, y.size))

    if classifier:
        probs = rng.dirichlet(np.ones(s), va.size) + np.eye(s)[labels[va]] * rng.random((va.size, 1))
        probs /= probs.sum(1, keepdims=True)
        save_npy(run.val_probs, probs.astype(np.float32))
        save_npy(run.val_index, va.astype(np.int64))
        rep = classification_report(labels[va], probs.argmax(1), m.sources, train_labels=labels[tr])
        rep.update(n_val=rep["n"], train_top1=0.7, warnings=[], underfit={"likely": True, "reasons": ["train 70%"]})
        write_json(run.metrics, rep)
        run.log.write_text("".join(json.dumps({"step": k, "loss": 1.1 / k}) + "\n" for k in range(1, 9))
                           + json.dumps({"step": 8, "eval/val_top1": rep["top1"]}) + "\n")
    if features:
        x = rng.normal(size=(labels.size, 6)).astype(np.float32) + labels[:, None]
        for split, idx in (("train", tr), ("val", va)):
            write_split(run.features, split, x[idx], labels[idx], idx)
        write_meta(run.features, {"dim": 6, "sources": m.sources, "backbone": "made-up"})
        rep = classification_report(labels[va], predict(labels[va], 0.8), m.sources, train_labels=labels[tr])
        init = classification_report(labels[va], predict(labels[va], 0.5), m.sources, train_labels=labels[tr])
        gain = rep["top1"] - init["top1"]
        rep.update(n_val=rep["n"], n_train=int(tr.size), init=init, init_top1=init["top1"], gain_over_init=gain,
                   gain_ci95=[gain - 0.2, gain + 0.2], gain_metric="top1")
        write_json(root / "features" / "probe_linear.json", rep)
    meta_rep = classification_report(labels[va], predict(labels[va], 0.95), m.sources, train_labels=labels[tr])
    tiny_rep = classification_report(labels[va], predict(labels[va], 0.4), m.sources, train_labels=labels[tr])
    write_json(run.baselines, {"metadata": meta_rep, "tiny": tiny_rep})
    if leak and features:
        a, b = int(va[0]), int(tr[-1])
        pair = {"cosine": 0.99, "kind": "train-val", "a": {"index": a, "split": "val", "source": m.sources[labels[a]],
                                                            "item": m.rows[a]["item"]},
                "b": {"index": b, "split": "train", "source": m.sources[labels[b]], "item": m.rows[b]["item"]}}
        write_json(leakage_path(run.features), {"threshold": 0.95, "k": 10, "n": int(labels.size), "pairs": 1,
                                                "counts": {"train-val": 1, "cross-source": 0, "within-source": 0},
                                                "by_source": {}, "saturated": 0, "val_with_train_duplicate": [a],
                                                "top_pairs": [pair]})
    write_json(run.provenance, provenance())
    return root


def make_report_study(out: Path, n_runs: int = 2) -> Path:
    """A tiny made-up study dir as tools/study.py leaves it (runs/ with :func:`make_report_run` dirs, results.csv,
    report.md, figures/, provenance.json): the first ``n_runs`` combos rows, each with its shortcut baselines."""
    from dsbias.config import load_config
    from dsbias.runs import RunDir, provenance, read_json, write_json
    from dsbias.studies.catalogue import StudyContext, build_cells
    from dsbias.studies.report import write_report
    from dsbias.studies.runner import _row, run_dir

    cfg = load_config(None, ["data=toy4"])
    rows = []
    for cell in build_cells("combos", StudyContext(cfg.data.sources, tiny=True))[:n_runs]:
        rdir = make_report_run(run_dir(out, cell, 0), features=False)
        run = RunDir.at(rdir)
        rows.append(_row(cell, rdir, 0, "end-to-end", read_json(run.metrics), cfg))
        b = read_json(run.baselines)
        rows += [_row(cell, rdir, 0, f"{k} baseline", {**b[key], "n_val": b[key]["n"]}, cfg)
                 for k, key in (("metadata", "metadata"), ("tiny-image", "tiny"))]
    write_report("combos", rows, out, "python tools/study.py --study combos --tiny")
    write_json(RunDir.at(out).provenance, provenance())
    return out
