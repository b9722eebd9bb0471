"""Probes: kNN equals a brute-force torch oracle, the linear probe is right and honest, CLIs write full JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_features

from dsbias.cli.knn import main as main_knn
from dsbias.cli.linear import main as main_linear
from dsbias.errors import UserError
from dsbias.features.store import load_features
from dsbias.probes import knn
from dsbias.probes.linear import Standardizer, probe_once


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


@pytest.mark.parametrize("k", [1, 5, 20, 137])
def test_knn_matches_torch_reference(k):
    rng = np.random.default_rng(k)
    bank = rng.normal(size=(137, 24)).astype(np.float32)  # random continuous data: no exact ties
    queries = rng.normal(size=(37, 24)).astype(np.float32)  # < 100 queries (DINO's N // 100 bug)
    labels = rng.integers(0, 4, 137)
    sims, idx = knn.knn_search(bank, queries, k, query_chunk=16)  # several chunks, last one partial
    ref_idx, ref_votes = torch_knn(bank, queries, labels, k, 4, 0.07)
    assert np.array_equal(idx, ref_idx)
    votes = knn.knn_vote(sims, labels[idx], 4, 0.07)
    np.testing.assert_allclose(votes, ref_votes, rtol=1e-4)
    assert np.array_equal(votes.argmax(1), ref_votes.argmax(1))


def test_run_knn_clips_k_and_keeps_absent_classes(tmp_path):
    # Val holds sources 0 and 1: the vote still has 3 columns and per-source recall is None for the absent one.
    fs = load_features(make_features(tmp_path, n=(40, 7), val_labels=np.array([0, 1] * 3 + [0])))
    res, pred = knn.run_knn(fs, ks=[10, 500], progress=False)
    assert res["per_k"]["500"]["k"] == 40 and any("clipped to 40" in n for n in res["notes"])
    assert res["per_source"]["c"] is None and len(res["confusion"]) == 3
    ref_idx, ref_votes = torch_knn(np.asarray(fs.train.features), np.asarray(fs.val.features), fs.train.labels, 10,
                                   3, 0.07)
    assert res["top1"] == np.mean(ref_votes.argmax(1) == fs.val.labels) == np.mean(pred == fs.val.labels)


def test_knn_backend_choice():
    notes = []
    assert knn.resolve_backend("cpu", 20, notes) == "cpu"
    if not knn.gpu_available():
        assert knn.resolve_backend("auto", 20, notes) == "cpu"
        with pytest.raises(UserError, match="no GPU support"):
            knn.resolve_backend("gpu", 20, notes)


def test_linear_separates_blobs(tmp_path):
    fs = load_features(make_features(tmp_path, shift=1.0))
    pred, run = _probe(fs)
    assert np.mean(pred == fs.val.labels) > 0.95
    assert {r["weight_decay"] for r in run["selection"]} >= {1e-2, 1e-7}


def test_linear_near_chance_on_identical_distributions(tmp_path):
    from dsbias.probes.linear import run_linear

    fs = load_features(make_features(tmp_path, n=(600, 300), shift=0.0))
    res, _ = run_linear(fs)
    lo, hi = res["ci95"]
    assert lo <= res["chance"] <= hi


def test_linear_choice_never_sees_val_labels(tmp_path):
    fs = load_features(make_features(tmp_path, shift=0.3))
    a = _probe(fs, seed=1)[1]
    shuffled = make_features(tmp_path / "s", shift=0.3, val_labels=np.random.default_rng(5).integers(0, 3, 60))
    b = _probe(load_features(shuffled), seed=1)[1]
    assert a["weight_decay"] == b["weight_decay"] and a["selection"] == b["selection"]


def test_cli_writes_full_json(tmp_path, capsys):
    make_features(tmp_path / "features")
    assert main_knn(["--features", str(tmp_path), "--k", "10", "20", "--no-progress"]) == 0
    assert main_linear(["--features", str(tmp_path), "--seeds", "2", "--wd", "1e-3", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "recall" in out
    for name in ("probe_knn.json", "probe_linear.json"):
        res = json.loads((tmp_path / "features" / name).read_text())
        for key in ("top1", "chance", "ci95", "ci95_iid", "majority", "per_source", "confusion", "sources", "n_train",
                    "n_val", "settings", "backend", "features", "p_value", "verdict", "balanced_top1", "n_groups"):
            assert key in res, (name, key)
        assert res["features"]["checkpoint_sha256"] == "abc123" and res["n_val"] == 60
    knn_res = json.loads((tmp_path / "features" / "probe_knn.json").read_text())
    assert set(knn_res["per_k"]) == {"10", "20"} and knn_res["k"] == 10
    lin = json.loads((tmp_path / "features" / "probe_linear.json").read_text())
    assert lin["seeds"]["n"] == 2 and len(lin["seeds"]["top1"]) == 2 and "std" in lin["seeds"]


@pytest.mark.parametrize("main", [main_knn, main_linear])
def test_bad_features_exit_2_with_one_line(tmp_path, capsys, main):
    make_features(tmp_path)
    np.save(tmp_path / "val_features.npy", np.zeros((60, 5), np.float32))
    assert main(["--features", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "dim 5" in err[-1] and "Traceback" not in "".join(err)


@pytest.mark.gpu
def test_faiss_gpu_matches_cpu():
    if not knn.gpu_available():
        pytest.skip("needs faiss with GPU support and a GPU")
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(5000, 64)).astype(np.float32), rng.normal(size=(300, 64)).astype(np.float32)
    _, idx_cpu = knn.knn_search(bank, queries, 50, "cpu")
    _, idx_gpu = knn.knn_search(bank, queries, 50, "gpu")
    assert np.mean(idx_cpu == idx_gpu) > 0.999  # GPU float reductions may swap near-ties


@pytest.mark.gpu
def test_linear_on_cuda_matches_cpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from dsbias.probes.linear import run_linear

    fs = load_features(make_features(tmp_path, shift=0.5))
    (cpu, _), (gpu, _) = run_linear(fs, device="cpu"), run_linear(fs, device="cuda")
    assert gpu["backend"] == "torch-lbfgs@cuda" and abs(cpu["top1"] - gpu["top1"]) <= 2 / fs.val.labels.size
