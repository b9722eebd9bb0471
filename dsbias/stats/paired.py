"""A paired comparison of two predictions of the same val images (trained features vs the random-init control).

Both predictions are scored on the same images, so the difference of their accuracies has far less noise than
two independent intervals suggest. The interval resamples val groups (within each source, Rao & Wu's rescaled
bootstrap: :func:`dsbias.stats.intervals.bootstrap_totals`) and recomputes both accuracies on each replicate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsbias.stats.intervals import balanced_of, bootstrap_totals, top1_of

N_BOOT = 2000


def paired_gain(
    y_true: np.ndarray, pred: np.ndarray, pred_ref: np.ndarray, num_classes: int, groups: np.ndarray | None = None,
    metric: str = "top1", n_boot: int = N_BOOT, seed: int = 0,
) -> dict[str, Any]:
    """``metric(pred) - metric(pred_ref)`` on the same val images, with its paired 95% interval.

    Args:
        y_true: ``[N]`` true source ids.
        pred: ``[N]`` predictions to assess (e.g. from pretrained features).
        pred_ref: ``[N]`` reference predictions of the same images (e.g. from the random-init features).
        num_classes: S.
        groups: ``[N]`` val group ids, or ``None`` (every image its own group).
        metric: ``top1`` or ``balanced_top1``.
        n_boot: Bootstrap replicates.
        seed: Seeds the bootstrap.

    Returns:
        ``gain``, ``ci95`` (percentile interval of the paired bootstrap), ``metric``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    ones = np.ones(y_true.size)
    values = np.stack([ones, pred == y_true, ones, pred_ref == y_true], 1)  # [N, 4]: (n, correct) twice
    reps = bootstrap_totals(y_true, groups, values, num_classes, n_boot, seed)
    stat = balanced_of if metric == "balanced_top1" else top1_of
    gain = float(stat(reps.observed[:, :2]) - stat(reps.observed[:, 2:]))
    boot = stat(reps.boot[..., :2]) - stat(reps.boot[..., 2:])  # [B]
    lo, hi = reps.interval(gain, boot, -1.0, 1.0)
    if not reps.estimable:
        lo, hi = -1.0, 1.0
    return {"gain": gain, "ci95": [min(lo, gain), max(hi, gain)], "metric": metric}
