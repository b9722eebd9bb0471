"""``tools/bench_extract.py``: how close feature extraction (``ssl/extract.py``'s loop: decode, the model's own
preprocessing, forward, part files, publish) comes to a bare ``model(x)`` loop over the same model, batch and
images, already decoded and preprocessed in memory. The loader alone (decode + preprocessing, no model) is timed
too, so the table says which side limits the extraction on this machine.

Everything is made in a temporary folder: JPEGs of about 500 px in two folder sources (as
:mod:`dsbias.bench.loader` makes them). Nothing is downloaded: the default backbone is a random-init timm
ViT-S/16 at 224 px.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from dsbias.bench.loader import make_jpegs
from dsbias.bench.timer import machine_line, time_it
from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader
from dsbias.data.manifest import SPLITS, build_manifest
from dsbias.data.sources.registry import create_sources
from dsbias.engine.loop import create_accelerator
from dsbias.features.extract import extract_features
from dsbias.models.frozen import load_frozen
from dsbias.runs import RunDir


def run_bench(images: int, batch: int, workers: int, repeat: int, backbone: str, init: str,
              weights: str | None = None, folder: str | None = None) -> str:
    """Time the extraction, the loader alone and the bare loop; return the markdown report."""
    return report(measure(images, batch, workers, repeat, backbone, init, weights, folder))


def measure(images: int, batch: int, workers: int, repeat: int, backbone: str, init: str,
            weights: str | None = None, folder: str | None = None) -> dict[str, Any]:
    """Time the extraction, the loader alone and the bare loop over the same ``images``: their
    :class:`~dsbias.bench.timer.Timing` (seconds per pass over all images) and what was run."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp)
        make_jpegs(root / "jpg", images)
        srcs = f"[{{name: a, kind: folder, path: '{root}/jpg/a'}}, {{name: b, kind: folder, path: '{root}/jpg/b'}}]"
        n_per = images // 2
        cfg = load_config(None, [
            f"data.sources={srcs}", f"data.per_source={{train: {n_per - n_per // 5}, val: {n_per // 5}}}",
            f"data.num_workers={workers}", "data.dedup=ignore", f"extract.backbone={json.dumps(backbone)}",
            f"extract.init={init}", *([f"extract.weights={json.dumps(weights)}"] if weights else []),
            f"extract.batch_size={batch}", "extract.block_batches=8", "train.log_with=[]", f"out={root}/run"])
        accelerator = create_accelerator(cfg.train, RunDir.at(cfg.out))
        manifest = build_manifest(cfg.data)
        fb = load_frozen(cfg.extract, cfg.train.seed)
        module = fb.module.to(accelerator.device)
        n = sum(len(manifest.split_indices(s)) for s in SPLITS)

        def extract() -> None:
            extract_features(module, manifest, cfg.data, root / "features", accelerator, settings=cfg.extract,
                             preprocess=fb.preprocess, meta=fb.record)

        t_extract, _ = time_it(extract, repeat=repeat, warmup=1)
        datasets = [MixedDataset(manifest, s, fb.preprocess.full, create_sources(cfg.data),
                                 max_short_side=cfg.data.max_short_side) for s in SPLITS]
        loaders = [create_loader(ds, batch, num_workers=workers) for ds in datasets]
        t_loader, _ = time_it(lambda: sum(len(x) for ld in loaders for x, _, _ in ld), repeat=repeat, warmup=1)
        batches = [x.to(accelerator.device) for ld in loaders for x, _, _ in ld]  # decoded + preprocessed once

        def bare() -> None:
            with torch.no_grad():
                for x in batches:
                    module(x)

        t_bare, _ = time_it(bare, repeat=repeat, warmup=1)
    return {"n": n, "backbone": backbone, "init": init, "image_size": fb.record["image_size"],
            "dim": fb.record["dim"], "batch": batch, "workers": workers, "device": str(accelerator.device),
            "repeat": repeat, "extract": t_extract, "loader": t_loader, "bare": t_bare}


def report(r: dict[str, Any]) -> str:
    """The markdown table of :func:`measure`'s figures."""
    n, repeat, workers = r["n"], r["repeat"], r["workers"]
    t_extract, t_loader, t_bare = r["extract"], r["loader"], r["bare"]
    lines = [f"Extraction of {n} JPEGs (~500 px, 2 folder sources) with `{r['backbone']}` ({r['init']} init, "
             f"{r['image_size']} px, dim {r['dim']}), batch {r['batch']}, {workers} loader workers, {r['device']}; "
             f"median of {repeat} after one warm-up (min-max in s):", "",
             "| | images/s | s per pass (min-max) |", "|---|---:|---|",
             f"| `ssl/extract.py` loop (decode, model preprocessing, forward, part files, publish) | "
             f"{t_extract.rate(n):.1f} | {t_extract.median:.2f} ({t_extract.spread()}) |",
             f"| loader alone (decode + model preprocessing, {workers} workers, no model) | {t_loader.rate(n):.1f} | "
             f"{t_loader.median:.2f} ({t_loader.spread()}) |",
             f"| bare `model(x)` loop over the same preprocessed batches | {t_bare.rate(n):.1f} | "
             f"{t_bare.median:.2f} ({t_bare.spread()}) |",
             f"| ratio extraction / bare loop | {t_extract.rate(n) / t_bare.rate(n):.2f} | |", "", machine_line()]
    return "\n".join(lines)
