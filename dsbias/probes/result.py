"""A probe's result file (``probe_<name>.json`` beside the features) and its one-screen summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsbias.features.store import FeatureSet, result_path
from dsbias.runs import provenance, write_json
from dsbias.stats import format_table

IDENTITY_KEYS = ("backbone", "init", "pooling", "layer", "checkpoint_sha256", "manifest_sha256", "transform",
                 "format_version")


def feature_identity(fs: FeatureSet) -> dict[str, Any]:
    """What the probed features are, so a number can be traced back to a backbone and checkpoint."""
    return {"root": str(fs.root.resolve()), "dim": fs.dim,
            **{k: fs.meta[k] for k in IDENTITY_KEYS if k in fs.meta}}


def write_result(fs: FeatureSet, name: str, result: dict[str, Any], settings: dict[str, Any], seconds: float) -> Path:
    """Write ``probe_<name>.json``: the result, the settings, what the features are, time and provenance."""
    out = result_path(fs.root, name)
    write_json(out, {**result, "settings": settings, "features": feature_identity(fs), "seconds": round(seconds, 3),
                     "provenance": provenance()})
    return out


def summary_text(result: dict[str, Any], title: str, extra: list[str], seconds: float, out: Path) -> str:
    """The table (top-1, CI, chance, majority, confusion), extra lines, notes, and where it went."""
    lines = [format_table(result, title), *(f"WARNING: {w}" for w in result.get("warnings", [])), *extra,
             *(f"note: {n}" for n in result.get("notes", []))]
    lines.append(f"{result['n_train']} train / {result['n_val']} val rows, {len(result['sources'])} sources, "
                 f"{result['backend']}, {seconds:.1f}s -> {out}")
    return "\n".join(lines)
