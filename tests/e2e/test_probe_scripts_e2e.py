"""Probes: kNN equals a brute-force torch oracle, the linear probe is right and honest, CLIs write full JSON."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dsbias.features.store import write_meta, write_split
from dsbias.probes.linear import Standardizer, probe_once


def make_features(root, n=(300, 60), dim=16, sources=("a", "b", "c"), shift=3.0, seed=0, val_labels=None):
    """Gaussian blobs, one per source, ``shift`` apart (0: identical distributions)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(len(sources), dim)) * shift
    start = 0
    for split, m in zip(("train", "val"), n):
        y = rng.integers(0, len(sources), m) if split == "train" or val_labels is None else val_labels
        x = (rng.normal(size=(m, dim)) + mu[y]).astype(np.float32)
        write_split(root, split, x, y, np.arange(start, start + m))
        start += m
    write_meta(root, {"dim": dim, "sources": list(sources), "backbone": "toy_vit", "checkpoint_sha256": "abc123"})
    return root


def torch_knn(bank, queries, labels, k, num_classes, t):
    """Oracle: brute-force cosine top-k and exp(sim/T) vote in torch (float64)."""
    b = torch.nn.functional.normalize(torch.from_numpy(np.array(bank)).double(), dim=1)
    q = torch.nn.functional.normalize(torch.from_numpy(np.array(queries)).double(), dim=1)
    sims, idx = (q @ b.T).topk(min(k, b.shape[0]), dim=1)  # [Q, k]
    votes = torch.zeros(q.shape[0], num_classes, dtype=torch.float64)
    votes.scatter_add_(1, torch.from_numpy(np.array(labels))[idx], (sims / t).exp())
    return idx.numpy(), votes.numpy()


def _probe(fs, seed=0, val_labels=None):
    std = Standardizer.fit(fs.train.features)
    x, xv = std.apply(fs.train.features, torch.device("cpu")), std.apply(fs.val.features, torch.device("cpu"))
    return probe_once(x, torch.as_tensor(np.array(fs.train.labels)), xv, len(fs.sources), seed)


@pytest.mark.slow
def test_scripts_end_to_end(tmp_path):
    make_features(tmp_path / "features")
    for script, out in (("probe/knn.py", "probe_knn.json"), ("probe/linear.py", "probe_linear.json")):
        r = subprocess.run([sys.executable, script, "--features", str(tmp_path)], capture_output=True, text=True,
                           env={"PYTHONPATH": ".", "PATH": ""}, timeout=300)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "features" / out).is_file()
    r = subprocess.run([sys.executable, "probe/knn.py", "--features", str(tmp_path / "nowhere")], capture_output=True,
                       text=True, env={"PYTHONPATH": "."}, timeout=300)
    assert r.returncode == 2 and "no meta.json" in r.stderr and "Traceback" not in r.stderr
