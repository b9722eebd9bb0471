"""A fast anatomy table without training a network: a linear probe on the transformed network input.

For each transformation, every train and val image goes through the eval view with that transformation
(:func:`dsbias.data.views.create_eval_transform` with its ``pil``/``tensor`` stages), and a standardised logistic
regression is fit on simple statistics of the resulting tensor: an ``8 x 8`` average-pooled copy, and per
channel the mean, standard deviation and mean absolute horizontal and vertical differences (colour, layout,
noise and sharpness cues). It is far weaker than the network, but it shows in a minute on a CPU which
transformations remove a *known* signature (toy sources): those drop to chance, the others do not. The
network-based table is the classifier retrained per transformation (``probe/classify.py data.transform=...``).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.data.config import DataConfig
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import Manifest
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD, create_eval_transform
from dsbias.log import progress
from dsbias.stats import DEFF_SHOWN, classification_report, format_p, holm, verdict

DEFAULT_TRANSFORMS = ("", "grayscale", "mean_rgb", "lpf", "hpf", "pixel_shuffle_fixed", "pixel_shuffle_random",
                      "patch_shuffle_fixed", "patch_shuffle_random", "canny", "hog", "jpeg", "downup", "canonical")


def input_statistics(x: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` network inputs -> ``[N, 3 * 64 + 12]`` probe features (8x8 pooled + per-channel stats)."""
    pooled = F.adaptive_avg_pool2d(x, 8).flatten(1)  # [N, 192]
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean((2, 3))  # [N, 3]
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((2, 3))
    return torch.cat([pooled, x.mean((2, 3)), x.std((2, 3)), dx, dy], 1).numpy()


def _features(
    manifest: Manifest, data: DataConfig, split: str, view: Any, workers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ds = MixedDataset.from_config(manifest, split, view, data, cache=False)  # one pass
    with ThreadPoolExecutor(max(1, workers)) as pool:
        xs = list(pool.map(lambda i: ds[i][0], range(len(ds))))
    groups = manifest.group_codes()[ds.index] if manifest.has_groups else None
    return input_statistics(torch.stack(xs)), ds.labels, groups


def pixel_probe_table(manifest: Manifest, data: DataConfig, transforms: tuple[str, ...] = DEFAULT_TRANSFORMS,
                      workers: int = 4) -> list[dict[str, Any]]:
    """One row per transformation (``""`` = reference): ``transform``, and the val classification report.

    Args:
        manifest: Rows to use (train fits the probe, val scores it).
        data: The data config the manifest was drawn with; its ``anatomy`` parameters are used, its
            ``transform`` is replaced by each entry of ``transforms``.
        transforms: ``data.transform`` values to compare.
        workers: Threads decoding and transforming images.
    """
    rows = []
    for name in progress(transforms, desc="transformations"):
        cfg = dataclasses.replace(data, transform=name)
        a = create_anatomy_transforms(cfg)
        view = create_eval_transform(data.image_size, data.crop_pct, *a.normalization(IMAGENET_MEAN, IMAGENET_STD),
                                     pil_fn=a.pil, tensor_fn=a.tensor)
        xtr, ytr, _ = _features(manifest, cfg, "train", view, workers)
        xva, yva, gva = _features(manifest, cfg, "val", view, workers)
        with threadpool_limits(limits=1):  # small fit; OpenMP spinning on a busy machine only slows it down
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1)).fit(xtr, ytr)
            pred = clf.predict(xva)
        rows.append({"transform": name or "reference",
                     **classification_report(yva, pred, manifest.sources, ytr, groups=gva)})
    return rows


def format_anatomy_table(rows: list[dict[str, Any]]) -> str:
    """``transformation | val top-1 | 95% CI | chance | p | verdict`` as a Markdown table (p-values Holm-corrected
    across the rows: the table is one family of tests)."""
    lines = ["| transformation | val top-1 | 95% CI | chance | p (Holm) | verdict |", "|---|---|---|---|---|---|"]
    for r, p in zip(rows, holm([r["p_value"] for r in rows])):
        lo, hi = r["ci95"]
        lines.append(f"| {r['transform']} | {100 * r['top1']:.1f} | {100 * lo:.1f}-{100 * hi:.1f} | "
                     f"{100 * r['chance']:.1f} | {format_p(p)} | {verdict(p, r['alpha'])} |")
    wide = [f"{r['transform']} {r['design_effect']:.1f}" for r in rows if r["design_effect"] > DEFF_SHOWN]
    if wide:
        lines.append(f"\ndesign effect above {DEFF_SHOWN} (images of a group are not independent): {', '.join(wide)}")
    return "\n".join(lines)
