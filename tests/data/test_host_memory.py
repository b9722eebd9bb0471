"""Host memory: manifest rows as arrays (forked loader workers share them instead of copying dicts), and
loader workers sized to the machine and its processes."""

from __future__ import annotations

import numpy as np
from conftest import TINY_RUN

from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest


def test_rows_are_arrays_and_read_back_exactly():
    cfg = load_config(None, TINY_RUN)
    manifest = build_manifest(cfg.data)
    ds = MixedDataset.from_config(manifest, "train", np.asarray, cfg.data)
    expected = [manifest.rows[i] for i in manifest.split_indices("train")]
    assert len(ds) == len(expected) > 0
    # No per-row Python objects: every attribute that grows with the rows is a numpy array.
    per_row = [k for k, v in vars(ds).items() if isinstance(v, list | tuple | dict) and len(v) >= len(ds)]
    assert per_row == []
    for i, row in enumerate(expected):
        assert ds.row(i) == {k: row[k] for k in ("index", "source_id", "source", "origin", "item", "split")}
    _, label, index = ds[3]
    assert int(label) == expected[3]["source_id"] and int(index) == expected[3]["index"]


def test_workers_share_the_machine_among_its_processes(monkeypatch):
    from dsbias.data import loader

    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: set(range(32)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert loader.default_workers() == 4  # 8 processes x 4 workers on 32 cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loader.default_workers() == loader.MAX_WORKERS
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert loader.default_workers() == 1
    cfg = load_config(None, ["data=toy"])
    assert cfg.data.num_workers is None and cfg.data.loader_workers() == 1
    assert load_config(None, ["data=toy", "data.num_workers=3"]).data.loader_workers() == 3
