"""Clustering probe: scores equal scikit-learn's, NMI ~ 0 on null features and ~ 1 on separated blobs, the null
moves whole groups, and the CLI writes its JSON beside the features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_features
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dsbias.bench.calibration import grouped_gaussian
from dsbias.cli.cluster import main as main_cluster
from dsbias.features.store import load_features
from dsbias.probes.cluster import cluster_report, kmeans, run_cluster, scores


def test_scores_equal_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        y, c = rng.integers(0, 3, 200), rng.integers(0, 4, 200)
        cont = np.zeros((3, 4))
        np.add.at(cont, (y, c), 1)
        s = scores(cont[None])
        assert s["nmi"][0] == pytest.approx(normalized_mutual_info_score(y, c))
        assert s["ari"][0] == pytest.approx(adjusted_rand_score(y, c))
        assert s["purity"][0] == pytest.approx(cont.max(0).sum() / 200)


def test_nmi_near_zero_on_null_and_one_on_separated_blobs(tmp_path):
    null, _ = run_cluster(load_features(make_features(tmp_path / "null", n=(600, 300), shift=0.0)))
    assert null["nmi"]["value"] < 0.02 and null["verdict"] == "not shown"
    assert null["chance"] > 1 / 3  # purity's null is above 1/S: why it needs its own
    blobs, pred = run_cluster(load_features(make_features(tmp_path / "blobs", shift=5.0)))
    assert blobs["nmi"]["value"] > 0.95 and blobs["ari"]["value"] > 0.95 and blobs["verdict"] == "separable"
    assert blobs["top1"] == blobs["purity"]["value"] > 0.95 and pred.shape == (360,)


def test_group_null_accounts_for_groups():
    # Null data whose images come in groups: k-means finds the groups, which sit inside sources.
    rng = np.random.default_rng(1)
    x, y, g = grouped_gaussian(rng, 8, 10, np.zeros((3, 8)), tau=2.0)
    clusters = kmeans(x, 3)
    grouped, _ = cluster_report(y, clusters, ["a", "b", "c"], 3, g, n_perm=499)
    iid, _ = cluster_report(y, clusters, ["a", "b", "c"], 3, None, n_perm=499)
    assert grouped["purity"]["null_q95"] > iid["purity"]["null_q95"] + 0.03
    assert grouped["ci95"][1] - grouped["ci95"][0] > iid["ci95"][1] - iid["ci95"][0]


def test_cli_writes_json(tmp_path, capsys):
    make_features(tmp_path / "features", shift=0.5)
    assert main_cluster(["--features", str(tmp_path), "--k", "3", "6", "--permutations", "199"]) == 0
    res = json.loads((tmp_path / "features" / "probe_cluster.json").read_text())
    for key in ("nmi", "ari", "purity", "top1", "ci95", "p_value", "verdict", "chance", "per_k", "settings"):
        assert key in res, key
    assert set(res["per_k"]) == {"3", "6"} and res["k"] == 3 and len(res["cluster_sizes"]) == 3
    out = capsys.readouterr().out
    assert "NMI" in out and "verdict:" in out


def test_large_sets_are_subsampled_by_whole_groups(tmp_path):
    from dsbias.probes.cluster import subsample

    groups = np.repeat(np.arange(50), 4)
    keep = subsample(200, groups, 41, seed=0)
    assert keep.size == 40 and np.all(np.bincount(groups[keep])[np.unique(groups[keep])] == 4)
    assert subsample(200, None, 500, 0) is None
    res, pred = run_cluster(load_features(make_features(tmp_path, shift=2.0)), max_rows=100)
    assert res["n"] == 100 and pred.shape == (100,) and any("subsample of 100 of 360" in n for n in res["notes"])
