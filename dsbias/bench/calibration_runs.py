"""Calibration of the end-to-end classifier's verdict and interval: repeated runs on null toy data.

Each run is the default classifier (``configs/classify/default.yaml``) with its own seed (data and init) on a null
source set: ``toy_null`` (independent images) and ``toy_grouped_null`` (scenes of 20 crops, split by scene).
Nothing separates the sources, so the true accuracy is 1/S: a verdict of ``separable`` is a false positive and
the interval should contain 1/S. The grouped runs are also scored as if their images were independent.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.config import load_config
from dsbias.data.manifest import Manifest
from dsbias.pipelines.classify import classify
from dsbias.runs import RunDir
from dsbias.stats import classification_report
from dsbias.typedconfig import find_preset

NULL_DATA = ("toy_null", "toy_grouped_null")


def _outcome(rep: dict[str, Any], truth: float) -> dict[str, Any]:
    lo, hi = rep["ci95"]
    return {"separable": rep["verdict"] == "separable", "width": hi - lo, "covered": bool(lo <= truth <= hi)}


def classifier_run(data: str, seed: int, out: Path, overrides: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """One default classifier run on null ``data`` with ``seed``; its verdict and interval, with the run's groups
    and (for grouped data) as if the images were independent."""
    cfg = load_config(find_preset("classify/default"), [
        f"data={data}", f"data.seed={seed}", f"train.seed={seed}", "train.log_with=[]", "classify.eval_every=0",
        "classify.train_top1=false", f"out={out}", *overrides])
    with contextlib.redirect_stdout(io.StringIO()):
        m = classify(cfg)
    truth = 1 / len(m["sources"])
    result = {f"classifier {data}/groups": _outcome(m, truth)}
    run = RunDir.at(out)
    manifest = Manifest.load(run.manifest)
    if manifest.has_groups:
        probs, index = np.load(run.val_probs), np.load(run.val_index)
        iid = classification_report(manifest.labels()[index], probs.argmax(1), manifest.sources, seed=seed)
        result[f"classifier {data}/iid"] = _outcome(iid, truth)
    return result


def classifier_calibration(runs: int, out: Path, echo: Callable[[str], None] = print,
                           data: tuple[str, ...] = NULL_DATA,
                           overrides: tuple[str, ...] = ()) -> list[dict[str, dict[str, Any]]]:
    """``runs`` seeds of :func:`classifier_run` on each null data set (run dirs under ``out``; a run dir that is
    already complete is resumed at its end, so an interrupted calibration continues)."""
    outcomes = []
    for name in data:
        for seed in range(runs):
            o = classifier_run(name, seed, out / f"{name}-s{seed}", overrides)
            outcomes.append(o)
            echo(f"  classifier {name} seed {seed}: " + ", ".join(
                f"{k.split('/')[1]} {'SEPARABLE' if v['separable'] else 'not shown'}" for k, v in o.items()))
    return outcomes
