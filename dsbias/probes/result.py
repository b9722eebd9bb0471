"""A probe's result file (``probe_<name>.json`` beside the features), the random-init control beside it, and
its one-screen summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.features.store import FeatureSet, find_init_features, result_path, shared_groups
from dsbias.runs import provenance, write_json
from dsbias.stats import format_p, format_table, paired_gain

IDENTITY_KEYS = ("backbone", "init", "pooling", "layer", "checkpoint_sha256", "manifest_sha256", "transform",
                 "format_version", "control")
NOT_IN_INIT = ("per_k", "runs", "seeds", "notes", "init")  # the control's own report, without the bulky parts


def feature_identity(fs: FeatureSet) -> dict[str, Any]:
    """What the probed features are, so a number can be traced back to a backbone and checkpoint."""
    return {"root": str(fs.root.resolve()), "dim": fs.dim,
            **{k: fs.meta[k] for k in IDENTITY_KEYS if k in fs.meta}}


def group_notes(fs: FeatureSet) -> list[str]:
    """What a probe should say about the features' groups (a group in both train and val leaks)."""
    if fs.val.groups is None:
        return []
    shared = shared_groups(fs)
    if shared:
        return [f"{shared} group(s) have images in both train and val (an official split kept as given?): "
                "a probe can recognise them, so accuracy may be inflated"]
    return []


def val_rows(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and groups of the rows a probe predicts: val."""
    return fs.val.labels, fs.val.groups


def add_init_control(res: dict[str, Any], pred: np.ndarray, init_res: dict[str, Any], init_pred: np.ndarray,
                     fs: FeatureSet, init: FeatureSet, seed: int = 0,
                     rows: Callable[[FeatureSet], tuple[np.ndarray, np.ndarray | None]] = val_rows) -> dict[str, Any]:
    """Add the random-init control to a probe result: ``init`` (its report), ``init_top1``, and
    ``gain_over_init`` with a paired 95% interval (the same val images, resampled by group).

    Args:
        res: The probe's result on the trained features.
        pred: Its val predictions ``[M]``.
        init_res: The same probe's result on the features at initialisation.
        init_pred: Its val predictions ``[M]`` (the same rows: :func:`find_init_features` checks).
        fs: The trained features (labels, groups).
        init: The control's features (where they are).
        seed: Seeds the paired bootstrap.
        rows: Labels and groups of the rows ``pred`` is for (default: val).
    """
    labels, groups = rows(fs)
    gain = paired_gain(labels, pred, init_pred, len(fs.sources), groups, res["primary"], seed=seed)
    return {**res, "init": {**{k: v for k, v in init_res.items() if k not in NOT_IN_INIT},
                            "features": feature_identity(init)},
            "init_top1": init_res["top1"], "gain_over_init": gain["gain"], "gain_ci95": gain["ci95"],
            "gain_metric": gain["metric"]}


def run_with_control(fs: FeatureSet, probe: Callable[[FeatureSet], tuple[dict[str, Any], np.ndarray]],
                     control: bool = True,
                     rows: Callable[[FeatureSet], tuple[np.ndarray, np.ndarray | None]] = val_rows) -> dict[str, Any]:
    """Run ``probe`` on ``fs`` and, when ``fs`` is a pretraining run's features with its random-init control
    beside it (``features_init/``), on the control too (:func:`add_init_control`; ``rows`` as there)."""
    res, pred = probe(fs)
    init = find_init_features(fs) if control else None
    if init is None:
        return res
    init_res, init_pred = probe(init)
    return add_init_control(res, pred, init_res, init_pred, fs, init, rows=rows)


def write_result(fs: FeatureSet, name: str, result: dict[str, Any], settings: dict[str, Any], seconds: float) -> Path:
    """Write ``probe_<name>.json``: the result, the settings, what the features are, time and provenance."""
    out = result_path(fs.root, name)
    write_json(out, {**result, "settings": settings, "features": feature_identity(fs), "seconds": round(seconds, 3),
                     "provenance": provenance()})
    return out


def init_line(result: dict[str, Any]) -> str | None:
    """``random-init control: 39.2% ...; gain over init +0.8 pt (95% CI -1.9 to +3.5)``, or None without one."""
    if "gain_over_init" not in result:
        return None
    i = result["init"]
    lo, hi = result["gain_ci95"]
    metric = "balanced top-1" if result["gain_metric"] == "balanced_top1" else "top-1"
    return (f"random-init control (same backbone before training): top-1 {100 * i['top1']:.1f}% "
            f"({i['verdict']}, p = {format_p(i['p_value'])}); gain over init {100 * result['gain_over_init']:+.1f} "
            f"pt {metric} (paired 95% CI {100 * lo:+.1f} to {100 * hi:+.1f})")


def summary_text(result: dict[str, Any], title: str, extra: list[str], seconds: float, out: Path) -> str:
    """The table (top-1, CI, verdict, chance, majority, confusion), its warnings, the control, extra lines,
    notes, and where it went."""
    lines = [format_table(result, title), *(f"WARNING: {w}" for w in result.get("warnings", []))]
    control = init_line(result)
    lines += [control] if control else []
    lines += [*extra, *(f"note: {n}" for n in result.get("notes", []))]
    lines.append(f"{result['n_train']} train / {result['n_val']} val rows, {len(result['sources'])} sources, "
                 f"{result['backend']}, {seconds:.1f}s -> {out}")
    return "\n".join(lines)
