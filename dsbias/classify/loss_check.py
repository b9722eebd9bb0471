"""Did the training loss go down? The pseudo-dataset "fail" check of Liu & He Table 6.

A run "fails" when its loss curve does not decrease (they see it for large pseudo-datasets, which a network
cannot memorise). The start of training is the larger of the mean logged loss over the first ``window``
fraction of the logged steps and ``ln S`` (the loss of a uniform prediction, where a fresh head starts: a run
that learns the easy part of the signal before its first log line still started there). The run is flagged
when the mean over the last ``window`` is not at least ``min_drop`` (relative) below that start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def loss_trend(
    records: list[dict[str, Any]], num_classes: int, window: float = 0.1, min_drop: float = 0.02
) -> dict[str, Any]:
    """Compare early and late training loss from ``log.jsonl`` records.

    Args:
        records: Log records; those with ``step`` and ``loss`` (training lines) are used, the last per step.
        num_classes: S; ``ln S`` is the loss of a uniform prediction (also under label smoothing and mixup).
        window: Fraction of the logged steps in each of the two windows (at least one line each).
        min_drop: Relative drop ``1 - last / start`` needed to call the loss decreasing.

    Returns:
        ``loss_first`` (the first window's mean), ``loss_last``, ``loss_drop`` (relative to
        ``max(loss_first, ln S)``) and ``loss_decreased`` (None when fewer than two training lines were logged).
    """
    by_step = {int(r["step"]): float(r["loss"]) for r in records if "loss" in r and "step" in r and "event" not in r}
    losses = np.array([by_step[s] for s in sorted(by_step)], dtype=np.float64)
    if losses.size < 2:
        return {"loss_first": None, "loss_last": None, "loss_drop": None, "loss_decreased": None}
    k = max(1, int(round(window * losses.size)))
    first, last = float(losses[:k].mean()), float(losses[-k:].mean())
    start = max(first, math.log(num_classes))
    drop = 1.0 - last / start
    return {"loss_first": first, "loss_last": last, "loss_drop": drop, "loss_decreased": bool(drop >= min_drop)}
