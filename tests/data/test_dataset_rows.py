"""The dataset keeps manifest rows as arrays: forked loader workers share them instead of copying dicts."""

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
