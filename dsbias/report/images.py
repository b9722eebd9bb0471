"""The pictures a run page embeds, as PNG bytes: thumbnails of val images, the embedding map of the val features
(scikit-learn's PCA) and the training curves (matplotlib)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

THUMB = 96  # px, longer side: enough to see what the image is, small enough for a page of dozens
MAP_POINTS = 3000  # val rows drawn on the embedding map (a seeded subsample beyond that)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, dpi=90, bbox_inches="tight", format="png")
    _plt().close(fig)
    return buf.getvalue()


def thumbnail(image: Image.Image, size: int = THUMB) -> bytes:
    """A PNG thumbnail of ``image`` (longer side ``size`` px; small images are scaled up, pixels kept sharp)."""
    im = image.convert("RGB")
    scale = size / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                   Image.NEAREST if scale > 1 else Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def embedding_map(features: np.ndarray, labels: np.ndarray, sources: list[str], seed: int = 0) -> bytes:
    """The val features projected on their first two principal components, coloured by source.

    Args:
        features: ``[N, D]`` val features (standardised here, as the linear probe sees them).
        labels: ``[N]`` source ids.
        sources: Source names.
        seed: Seeds the subsample (at most ``MAP_POINTS`` rows are drawn).
    """
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.shape[0] > MAP_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(x.shape[0], MAP_POINTS, replace=False))
        x, y = x[keep], y[keep]
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    pca = PCA(n_components=min(2, x.shape[1]), random_state=seed)
    z = pca.fit_transform(x)
    if z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], 1)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for s, name in enumerate(sources):
        m = y == s
        ax.scatter(z[m, 0], z[m, 1], s=7, alpha=0.6, label=f"{name} ({int(m.sum())})", color=f"C{s % 10}")
    var = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({100 * var[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * var[1]:.0f}%)" if var.size > 1 else "")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def training_curves(records: list[dict[str, Any]], chance: float | None = None) -> bytes | None:
    """Train loss vs step, and val top-1 at its evaluations on a second axis (None when nothing was logged)."""
    loss = [(r["step"], r["loss"]) for r in records if "loss" in r and "step" in r and "event" not in r]
    val = [(r["step"], r["eval/val_top1"]) for r in records if "eval/val_top1" in r and "step" in r]
    if not loss and not val:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    if loss:
        ax.plot(*zip(*loss), lw=1, color="C0", label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss", color="C0")
    ax.grid(alpha=0.3)
    if val:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in val], [100 * v for _, v in val], "o-", color="C1", ms=3, label="val top-1")
        if chance is not None:
            ax2.axhline(100 * chance, ls="--", c="gray", lw=1)
        ax2.set_ylabel("val top-1 (%)", color="C1")
    return _png(fig)
