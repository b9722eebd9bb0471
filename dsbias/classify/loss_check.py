"""Did the training loss go down? The pseudo-dataset "fail" check of Liu & He Table 6.

A run "fails" when its loss curve does not decrease (they see it for large pseudo-datasets, which a network
cannot memorise). Compared here: the mean logged loss over the first and the last ``window`` fraction of the
logged steps; the run is flagged when the last is not at least ``min_drop`` (relative) below the first.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def loss_trend(records: list[dict[str, Any]], window: float = 0.1, min_drop: float = 0.05) -> dict[str, Any]:
    """Compare early and late training loss from ``log.jsonl`` records.

    Args:
        records: Log records; those with ``step`` and ``loss`` (training lines) are used, the last per step.
        window: Fraction of the logged steps in each of the two windows (at least one line each).
        min_drop: Relative drop ``1 - last / first`` needed to call the loss decreasing.

    Returns:
        ``loss_first``, ``loss_last``, ``loss_drop`` (relative) and ``loss_decreased`` (None when fewer than two
        training lines were logged: nothing to compare).
    """
    by_step = {int(r["step"]): float(r["loss"]) for r in records if "loss" in r and "step" in r and "event" not in r}
    losses = np.array([by_step[s] for s in sorted(by_step)], dtype=np.float64)
    if losses.size < 2:
        return {"loss_first": None, "loss_last": None, "loss_drop": None, "loss_decreased": None}
    k = max(1, int(round(window * losses.size)))
    first, last = float(losses[:k].mean()), float(losses[-k:].mean())
    drop = 1.0 - last / first if first > 0 else 0.0
    return {"loss_first": first, "loss_last": last, "loss_drop": drop, "loss_decreased": bool(drop >= min_drop)}
