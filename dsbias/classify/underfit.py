"""Is the classifier likely underfit? Then its val accuracy understates how separable the sources are.

A source classifier that has not fit its own training images (train accuracy within a few points of val and far
from 100%), or whose loss was still falling steeply when training stopped before it fit them, would very likely
separate the sources better with a longer run or a larger model. (A model that already names 90% of its
training images right has fit them: a loss that still falls there only sharpens its confidence, as in the
pseudo-dataset control.) Its number is a lower bound, and a reader who takes it for the
answer concludes the sources are barely separable. The check flags such runs and says what to raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TRAIN_GAP = 0.05  # train top-1 within 5 points of val ...
TRAIN_FAR = 0.90  # ... and below 90%: the model has not even fit (memorised) its training images
TAIL = 0.25  # the last quarter of the logged steps
TAIL_DROP = 0.05  # a linear fit of the loss that still falls by >= 5% over that quarter: still learning


def tail_drop(records: list[dict[str, Any]], tail: float = TAIL) -> float | None:
    """Relative fall of a linear fit of the training loss over the last ``tail`` of the logged steps (None with
    fewer than 4 lines there)."""
    by_step = {int(r["step"]): float(r["loss"]) for r in records if "loss" in r and "step" in r and "event" not in r}
    steps = np.array(sorted(by_step), dtype=np.float64)
    if steps.size < 4:
        return None
    last = steps[steps >= steps[-1] - tail * steps[-1]]
    if last.size < 4:
        last = steps[-4:]
    loss = np.array([by_step[int(s)] for s in last])
    slope, intercept = np.polyfit(last, loss, 1)
    start = slope * last[0] + intercept
    return float(-(slope * (last[-1] - last[0])) / start) if start > 0 else None


def underfit_check(train_top1: float | None, val_top1: float, records: list[dict[str, Any]], samples: int,
                   model: str) -> dict[str, Any]:
    """``likely`` (bool), ``reasons`` (what was seen and what to raise), ``tail_drop``.

    Args:
        train_top1: Final model's top-1 on the train images (eval view), or None if not measured.
        val_top1: Its val top-1.
        records: The run's ``log.jsonl`` records.
        samples: ``train.samples`` of the run.
        model: ``model.name`` of the run.
    """
    reasons = []
    if train_top1 is not None and train_top1 < TRAIN_FAR and train_top1 - val_top1 < TRAIN_GAP:
        reasons.append(f"train top-1 {100 * train_top1:.1f}% is within {100 * TRAIN_GAP:.0f} points of val "
                       f"({100 * val_top1:.1f}%) and far from 100%: {model} has not fit its own training images, so "
                       f"val understates how separable the sources are; raise train.samples (now {samples}) or "
                       "use a larger model (docs/classification.md: which preset for which question)")
    drop = tail_drop(records)
    if drop is not None and drop >= TAIL_DROP and (train_top1 is None or train_top1 < TRAIN_FAR):
        reasons.append(f"the training loss was still falling at the end ({100 * drop:.0f}% over the last "
                       f"{100 * TAIL:.0f}% of the run): raise train.samples (now {samples})")
    return {"likely": bool(reasons), "reasons": reasons, "tail_drop": drop}
