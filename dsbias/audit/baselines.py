"""Shortcut baselines: how much of the separability is trivial, reported next to the network's accuracy.

- **metadata**: a gradient-boosted tree classifier on file metadata only (native width, height, aspect, pixels,
  bytes, bits per pixel, format, JPEG quality estimate; :mod:`dsbias.anatomy.metadata`). No pixels.
- **tiny**: logistic regression on an 8x8 thumbnail (area-averaged) plus 16-bin per-channel colour histograms
  of the raw decoded image (no ``data.transform``): global colour and layout only.

Both train on the manifest's train rows (at most ``max_train`` per source, taken in manifest order, i.e. the
seeded draw) and are scored on every val row with :func:`dsbias.stats.classification_report` (95% CI, chance,
majority baseline, confusion), so they read exactly like a probe's numbers.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from dsbias.audit.metadata import metadata_features
from dsbias.data.config import DataConfig
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import Manifest
from dsbias.log import progress
from dsbias.stats import classification_report, format_p, format_table
from dsbias.typedconfig import ConfigError

logger = logging.getLogger(__name__)

THUMB = 8
HIST_BINS = 16


def split_rows(manifest: Manifest, max_train: int = 0) -> tuple[list[dict], list[dict]]:
    """Train rows (first ``max_train`` per source in manifest order; 0 = all) and all val rows."""
    per: Counter[int] = Counter()
    train = []
    for r in manifest.rows:
        if r["split"] == "train" and (max_train <= 0 or per[r["source_id"]] < max_train):
            per[r["source_id"]] += 1
            train.append(r)
    val = [r for r in manifest.rows if r["split"] == "val"]
    if not train or not val:
        raise ValueError(f"baselines: need train and val rows, got {len(train)} train and {len(val)} val")
    return train, val


def val_groups(manifest: Manifest, val: list[dict]) -> np.ndarray | None:
    """Group codes of the val rows (None when the manifest has no groups)."""
    if not manifest.has_groups:
        return None
    return manifest.group_codes()[[r["index"] for r in val]]


def _score(clf: Any, xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray,
           sources: list[str], groups: np.ndarray | None = None) -> dict[str, Any]:
    """Fit ``clf`` and report val accuracy (with CI, test, chance, confusion) and train accuracy."""
    if len(np.unique(ytr)) < 2:
        raise ConfigError("baselines: the train rows hold a single source")
    # One thread: these fits are small, and OpenMP spinning on a busy machine makes them 50x slower.
    with threadpool_limits(limits=1):
        clf.fit(xtr, ytr)
        pred_val, pred_train = clf.predict(xva), clf.predict(xtr)
    report = classification_report(yva, pred_val, sources, train_labels=ytr, groups=groups)
    report["train_top1"] = float(np.mean(pred_train == ytr))
    report["n_train"] = int(len(ytr))
    return report


def metadata_baseline(manifest: Manifest, max_train: int = 0, seed: int = 0, workers: int = 4) -> dict[str, Any]:
    """Classify the source from file metadata alone.

    Args:
        manifest: Rows with native ``width``, ``height``, ``format``, ``bytes`` (and file paths as ``item``).
        max_train: Train rows per source (0 = all).
        seed: Seed of the classifier.
        workers: Threads reading JPEG headers.

    Returns:
        A classification report plus ``train_top1``, ``n_train`` and the feature ``columns``.
    """
    train, val = split_rows(manifest, max_train)
    formats = sorted({str(r["format"]) for r in train})
    chunks = [train[i:i + 256] for i in range(0, len(train), 256)] + [val[i:i + 256] for i in range(0, len(val), 256)]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        feats = list(pool.map(lambda c: metadata_features(c, formats)[0], chunks))
    columns = metadata_features(train[:1], formats)[1]
    n_tr_chunks = (len(train) + 255) // 256
    xtr, xva = np.concatenate(feats[:n_tr_chunks]), np.concatenate(feats[n_tr_chunks:])
    # Columns never known in train (e.g. JPEG quality of toy or PNG sources) carry nothing, and an all-NaN
    # column breaks the histogram binning: drop them (and say which were used).
    known = ~np.isnan(xtr).all(axis=0)
    xtr, xva, columns = xtr[:, known], xva[:, known], [c for c, k in zip(columns, known) if k]
    ytr = np.array([r["source_id"] for r in train])
    yva = np.array([r["source_id"] for r in val])
    clf = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
    report = _score(clf, xtr, ytr, xva, yva, manifest.sources, val_groups(manifest, val))
    report["columns"] = columns
    return report


def tiny_features(img: Image.Image) -> np.ndarray:
    """``[3 * 8 * 8 + 3 * 16]`` float32: an 8x8 area-averaged thumbnail in [0, 1] and per-channel histograms."""
    img = img.convert("RGB")
    thumb = np.asarray(img.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float32) / 255.0  # [8, 8, 3]
    arr = np.asarray(img, dtype=np.int64)  # [H, W, 3]
    hist = [np.bincount(arr[..., c].ravel() * HIST_BINS // 256, minlength=HIST_BINS) / arr[..., c].size
            for c in range(3)]
    return np.concatenate([thumb.transpose(2, 0, 1).ravel(), np.concatenate(hist)]).astype(np.float32)


def _tiny_matrix(manifest: Manifest, data: DataConfig, rows: list[dict], split: str, workers: int) -> np.ndarray:
    """Tiny features of ``rows`` (all from ``split``), read through the run's sources, in row order."""
    ds = MixedDataset.from_config(manifest, split, tiny_features, data, cache=False)  # one pass
    pos = {int(i): k for k, i in enumerate(ds.index)}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        it = pool.map(lambda r: ds[pos[r["index"]]][0], rows)
        return np.stack(list(progress(it, total=len(rows), desc=f"tiny {split}", leave=False)))


def tiny_image_baseline(manifest: Manifest, data: DataConfig, max_train: int = 0, seed: int = 0,
                        workers: int = 4) -> dict[str, Any]:
    """Classify the source from 8x8 thumbnails and colour histograms (logistic regression, standardised).

    Args:
        manifest: The run's manifest.
        data: The data config the manifest was drawn with (to read the images).
        max_train: Train rows per source (0 = all).
        seed: Seed of the classifier.
        workers: Threads decoding images.
    """
    train, val = split_rows(manifest, max_train)
    xtr = _tiny_matrix(manifest, data, train, "train", workers)
    xva = _tiny_matrix(manifest, data, val, "val", workers)
    ytr = np.array([r["source_id"] for r in train])
    yva = np.array([r["source_id"] for r in val])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    return _score(clf, xtr, ytr, xva, yva, manifest.sources, val_groups(manifest, val))


def metadata_summary(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Per source: median native width/height/bytes and format counts over all rows (what the files look like)."""
    out = {}
    for name in manifest.sources:
        rows = [r for r in manifest.rows if r["source"] == name]
        out[name] = {"n": len(rows),
                     "median_width": float(np.median([r["width"] for r in rows])),
                     "median_height": float(np.median([r["height"] for r in rows])),
                     "median_bytes": float(np.median([r["bytes"] for r in rows])),
                     "formats": dict(Counter(str(r["format"]) for r in rows))}
    return out


def run_baselines(manifest: Manifest, data: DataConfig, max_train: int = 0, tiny: bool = True, seed: int = 0,
                  workers: int = 4) -> dict[str, Any]:
    """Both baselines and the per-source metadata summary, as one JSON-ready dict."""
    out: dict[str, Any] = {"sources": manifest.sources, "max_train": max_train, "seed": seed,
                           "summary": metadata_summary(manifest),
                           "metadata": metadata_baseline(manifest, max_train, seed, workers)}
    if tiny:
        out["tiny"] = tiny_image_baseline(manifest, data, max_train, seed, workers)
    return out


def format_baselines(results: dict[str, Any]) -> str:
    """The printed summary: one line per baseline, then each confusion matrix, then the metadata summary."""
    lines = [f"{'baseline':<10}{'val top-1':>10}{'95% CI':>15}{'chance':>8}{'majority':>10}{'train':>8}{'n val':>7}"
             f"{'p':>9}  verdict"]
    for name in ("metadata", "tiny"):
        if name in results:
            r = results[name]
            lines.append(f"{name:<10}{100 * r['top1']:>9.1f}%{100 * r['ci95'][0]:>8.1f}-{100 * r['ci95'][1]:<5.1f}"
                         f"{100 * r['chance']:>8.1f}{100 * r['majority']:>10.1f}{100 * r['train_top1']:>8.1f}"
                         f"{r['n']:>7}{format_p(r['p_value']):>9}  {r['verdict']}")
    for name in ("metadata", "tiny"):
        if name in results:
            lines += ["", format_table(results[name], title=f"[{name}]")]
    lines.append("")
    lines.append(f"{'source':<12}{'width':>8}{'height':>8}{'bytes':>10}  formats (medians over all rows)")
    for name, s in results["summary"].items():
        lines.append(f"{name:<12}{s['median_width']:>8.0f}{s['median_height']:>8.0f}{s['median_bytes']:>10.0f}  "
                     + ", ".join(f"{k} {v}" for k, v in s["formats"].items()))
    return "\n".join(lines)
