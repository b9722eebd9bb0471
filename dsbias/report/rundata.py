"""What a run page shows, read from a run dir: results, baselines, leakage, features, log, manifest, provenance.

Accepts a run dir or a features dir; a features dir named ``features`` (a run's) stands for the folder above it,
so a probe that writes ``probe_*.json`` there rewrites the run's own page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dsbias.config import load_config
from dsbias.data.decode import DecodeError
from dsbias.data.manifest import Manifest
from dsbias.data.sources.registry import create_sources
from dsbias.errors import UserError
from dsbias.features.store import META, FeatureSet, leakage_path, load_features, result_path
from dsbias.runs import JsonlLog, RunDir, read_json

logger = logging.getLogger(__name__)
PROBES = {"linear": "linear probe", "knn": "kNN probe", "cluster": "k-means clustering"}


def page_dir(path: str | Path) -> Path:
    """The directory whose page a path belongs to: ``X/features/`` (or ``features_init/``) -> ``X``, the run (or
    the folder ``--features X`` named); any other features dir keeps its own page."""
    p = Path(path)
    return p.parent if p.name in ("features", "features_init") else p


def has_results(path: str | Path) -> bool:
    """Whether a run (or features) dir holds a result a page can lead with (metrics.json or a probe_*.json)."""
    root = page_dir(path)
    run = RunDir.at(root)
    return run.metrics.is_file() or any(result_path(d, k).is_file() for d in (run.features, root) for k in PROBES)


@dataclass
class RunData:
    """Everything found in one run dir (None where a command has not been run)."""

    root: Path
    results: dict[str, dict[str, Any]]  # display name -> result (metrics.json, probe_*.json), headline first
    kind: str
    features_root: Path | None = None
    features: FeatureSet | None = None
    baselines: dict[str, Any] | None = None
    leakage: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] | None = None
    val_probs: tuple[np.ndarray, np.ndarray] | None = None  # ([N, S] probabilities, [N] manifest index)
    provenance: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    config: Path | None = None
    _readers: dict[str, Any] | None = None

    @property
    def headline(self) -> tuple[str, dict[str, Any]]:
        return next(iter(self.results.items()))

    @property
    def sources(self) -> list[str]:
        return self.headline[1]["sources"]

    def image(self, index: int) -> Image.Image | None:
        """The stored image of manifest row ``index`` (None without a manifest, a config, or when unreadable)."""
        if self.rows is None or self.config is None:
            return None
        row = self.rows[index]
        try:
            if self._readers is None:  # only pages that show images open the sources
                self._readers = create_sources(load_config(self.config).data)
            return self._readers[row["origin"]].read(row["item"])[0]
        except (DecodeError, OSError, KeyError, UserError) as e:
            # Sources moved or a file broken since the run: the page names the image instead of showing it, and
            # the command that wrote the run's results does not fail over its picture.
            logger.warning("report: cannot show %s (%s)", row["item"], e)
            self._readers = self._readers or {}
            return None


def _read(path: Path, files: list[str], root: Path) -> Any:
    if not path.is_file():
        return None
    files.append(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    return read_json(path)


def load_run(path: str | Path) -> RunData:
    """Read a run dir (or a features dir) for its page.

    Raises:
        UserError: Neither a classifier result, nor features with a probe result, nor features at all.
    """
    root = page_dir(path)
    run = RunDir.at(root)
    files: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    metrics = _read(run.metrics, files, root)
    if metrics is not None:
        results["end-to-end classifier"] = metrics
    froot = next((p for p in (run.features, root) if (p / META).is_file()), None)
    fs = load_features(froot) if froot is not None else None
    for key, name in PROBES.items():
        res = _read(result_path(froot, key), files, root) if froot is not None else None
        if res is not None:
            results[name] = res
    if not results:
        if fs is None:
            raise UserError(f"{root}: no metrics.json, probe_*.json or features here: give a run dir, a features "
                            "dir or a study dir (with results.csv)")
        raise UserError(f"{root}: features but no probe result yet: python probe/linear.py --features {root}")
    kind = "end-to-end classifier run" if metrics is not None else "features run"
    d = RunData(root=root, results=results, kind=kind, features_root=froot, features=fs, files=files)
    d.baselines = _read(run.baselines, files, root)
    d.leakage = _read(leakage_path(froot), files, root) if froot is not None else None
    d.provenance = _read(run.provenance, files, root)
    d.records = JsonlLog(run.log).read()
    if run.manifest.is_file() and run.manifest_summary.is_file():
        d.rows = Manifest.load(run.manifest).rows
    d.config = run.config if run.config.is_file() else None
    if run.val_probs.is_file() and run.val_index.is_file():
        d.val_probs = (np.load(run.val_probs), np.load(run.val_index))
    return d
