"""Statistics every reported number carries: chance, majority baseline, confidence intervals, confusion."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def wilson_ci(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); well-behaved at 0%, 100% and small n.

    Args:
        correct: Number of successes.
        total: Number of trials.
        z: Normal quantile (1.96 for 95%).

    Returns:
        ``(low, high)`` in [0, 1]; ``(0, 1)`` when ``total == 0``.
    """
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ci(
    correct: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector ``[N]``."""
    correct = np.asarray(correct, dtype=np.float64)
    if correct.size == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, (n_boot, correct.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[S, S]`` int64 counts; row = true source, column = predicted source."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, sources: list[str], train_labels: np.ndarray | None = None
) -> dict[str, Any]:
    """Top-1 with its 95% Wilson interval, chance, majority baseline, per-source recall and confusion.

    Args:
        y_true: True source ids ``[N]``.
        y_pred: Predicted source ids ``[N]``.
        sources: Source names (index = id).
        train_labels: Train labels ``[M]``; the majority baseline predicts their most frequent source.

    Returns:
        A JSON-ready dict: ``top1, ci95, chance, majority, per_source, confusion, sources, n``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    s = len(sources)
    conf = confusion_matrix(y_true, y_pred, s)
    n = int(y_true.size)
    correct = int(np.trace(conf))
    support = conf.sum(1)
    per_source = {
        name: (float(conf[i, i] / support[i]) if support[i] else None) for i, name in enumerate(sources)
    }
    ref = train_labels if train_labels is not None else y_true
    majority_class = int(np.bincount(np.asarray(ref, dtype=np.int64), minlength=s).argmax()) if n else 0
    return {
        "top1": correct / n if n else float("nan"),
        "ci95": list(wilson_ci(correct, n)),
        "chance": 1.0 / s,
        "majority": float(np.mean(y_true == majority_class)) if n else float("nan"),
        "per_source": per_source,
        "confusion": conf.tolist(),
        "sources": list(sources),
        "n": n,
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def format_table(report: dict[str, Any], title: str = "") -> str:
    """A readable block: top-1 with CI, chance, majority, per-source recall and the confusion matrix."""
    lo, hi = report["ci95"]
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"top-1 {100 * report['top1']:.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f}, n={report['n']})   "
        f"chance {100 * report['chance']:.1f}%   majority {100 * report['majority']:.1f}%"
    )
    names = report["sources"]
    w = max(8, *(len(n) for n in names)) + 1
    lines.append("true \\ pred".ljust(w) + "".join(n[:w - 1].rjust(w) for n in names) + "   recall")
    for i, name in enumerate(names):
        rec = report["per_source"][name]
        rec_s = f"{100 * rec:6.1f}%" if rec is not None else "     -"
        lines.append(name.ljust(w) + "".join(str(c).rjust(w) for c in report["confusion"][i]) + "   " + rec_s)
    return "\n".join(lines)
