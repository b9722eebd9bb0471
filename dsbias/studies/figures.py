"""The study report's figures (matplotlib, written as PNG): confusion heat maps, accuracy curves, training
curves and the most / least confidently named images."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.audit.leakage import confidence_extremes
from dsbias.config import load_config
from dsbias.data.manifest import Manifest
from dsbias.data.sources.registry import create_sources
from dsbias.runs import JsonlLog, RunDir, atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)


def plot_confusions(entries: list[dict[str, Any]], path: Path) -> None:
    """Write :func:`confusion_figure` as a PNG."""
    _save(confusion_figure(entries), path)


def confusion_figure(entries: list[dict[str, Any]]) -> Any:
    """Row-normalised confusion heat maps, one panel per setting (first seed), source names on the axes.

    Titles are wrapped to the panel's width and the layout is constrained, so neighbouring titles never run into
    each other and the rotated tick labels sit clear of the axis title.
    """
    plt = _plt()
    n = len(entries)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, e in zip(axes.flat, entries):
        conf = np.array(json.loads(e["confusion"]), dtype=float)
        names = json.loads(e["source_names"])
        norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i, j in np.ndindex(norm.shape):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(textwrap.fill(f"{e['label']} ({e['probe']}): {100 * e['mean']:.1f}%", 30), fontsize=8)
        ax.set_xlabel("predicted", fontsize=7, labelpad=6)
        ax.set_ylabel("true", fontsize=7)
    return fig


def plot_curve(entries: list[dict[str, Any]], xkey: str, xlabel: str, path: Path) -> None:
    """Accuracy vs x (log scale) with the pooled 95% CI band and the chance line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for probe in sorted({e["probe"] for e in entries}):
        es = sorted((e for e in entries if e["probe"] == probe and e.get(xkey)), key=lambda e: float(e[xkey]))
        if not es:
            continue
        x = [float(e[xkey]) for e in es]
        ax.plot(x, [100 * e["mean"] for e in es], "o-", label=probe)
        ax.fill_between(x, [100 * e["pooled_ci"][0] for e in es], [100 * e["pooled_ci"][1] for e in es], alpha=0.2)
    ax.axhline(100 * entries[0]["chance"], ls="--", c="gray", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("val top-1 (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_backbones(entries: list[dict[str, Any]], path: Path) -> None:
    """Val top-1 per backbone: one bar per (probe, weights / random init), 95% CI whiskers, the chance line."""
    plt = _plt()
    names = list(dict.fromkeys(e["backbone"] for e in entries if e.get("backbone")))
    series = [(p, i) for p in dict.fromkeys(e["probe"] for e in entries if e.get("backbone"))
              for i in ("pretrained", "random")]
    by = {(e["backbone"], e["probe"], e["init"]): e for e in entries if e.get("backbone")}
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 2), 3.8))
    for k, (probe, init) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i, n in enumerate(names) if (n, probe, init) in by]
        es = [by[(n, probe, init)] for n in names if (n, probe, init) in by]
        if not es:
            continue
        y = np.array([100 * e["mean"] for e in es])
        err = np.array([[y[j] - 100 * e["pooled_ci"][0], 100 * e["pooled_ci"][1] - y[j]] for j, e in enumerate(es)]).T
        ax.bar(xs, y, width, yerr=err, capsize=2, label=f"{probe}, {'weights' if init == 'pretrained' else 'random'}",
               color=f"C{k // 2}", alpha=1.0 if init == "pretrained" else 0.45)
    ax.axhline(100 * entries[0]["chance"], ls="--", c="gray", label="chance")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("val top-1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_training_curves(entries: list[dict[str, Any]], out: Path, path: Path) -> bool:
    """Training loss vs step for every setting (first seed); False if no run logged a loss."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    any_curve = False
    for e in entries:
        recs = [r for r in JsonlLog(RunDir.at(out / "runs" / e["run"]).log).read() if "loss" in r and "step" in r]
        if recs:
            any_curve = True
            ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], label=f"{e['label']}", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    if any_curve:
        ax.legend(fontsize=7, ncol=2)
        _save(fig, path)
    else:
        _plt().close(fig)
    return any_curve


def plot_confident_images(rdir: Path, path: Path, n: int = 4) -> bool:
    """Per source, the val images the classifier names most and least confidently (p of the true source).

    Needs the run's ``val_probs.npy`` (written by ``probe/classify.py``); False when it is absent.
    """
    run = RunDir.at(rdir)
    if not run.val_probs.is_file():
        return False
    manifest = Manifest.load(run.manifest)
    probs, index = np.load(run.val_probs), np.load(run.val_index)
    rows = [manifest.rows[int(i)] for i in index]
    labels = np.array([r["source_id"] for r in rows])
    ext = confidence_extremes(probs, labels, rows, manifest.sources, n=n)
    readers = create_sources(load_config(run.config).data)
    plt = _plt()
    names = manifest.sources
    fig, axes = plt.subplots(len(names), 2 * n, figsize=(1.5 * 2 * n, 1.7 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c, (kind, entry) in enumerate([("most", e) for e in ext[name]["most"][:n]]
                                          + [("least", e) for e in ext[name]["least"][:n]]):
            ax = axes[r, c]
            row = manifest.rows[entry["index"]]
            ax.imshow(readers[row["origin"]].read(row["item"])[0])
            ax.set_title(f"{'+' if kind == 'most' else '-'} p={entry['p_true']:.2f}", fontsize=6,
                         color="green" if entry["predicted"] == name else "red")
            ax.axis("off")
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{rdir.name}: left {n} most, right {n} least confidently named val images per source "
                 "(green: predicted right)", fontsize=8)
    _save(fig, path)
    return True
