"""The random-init control: a probe on a pretraining run's features also probes ``features_init/`` and reports
the gain with a paired interval; a stale control is an error, not a silent fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_features

from dsbias.cli.cluster import main as main_cluster
from dsbias.cli.knn import main as main_knn
from dsbias.cli.linear import main as main_linear


def test_probes_report_gain_over_init(tmp_path):
    make_features(tmp_path / "features", shift=1.0, seed=3)
    make_features(tmp_path / "features_init", shift=0.2, seed=3)  # same rows and labels, weaker features
    assert main_knn(["--features", str(tmp_path), "--no-progress"]) == 0
    assert main_linear(["--features", str(tmp_path), "--wd", "1e-3"]) == 0
    assert main_cluster(["--features", str(tmp_path), "--permutations", "199"]) == 0
    for name in ("knn", "linear", "cluster"):
        res = json.loads((tmp_path / "features" / f"probe_{name}.json").read_text())
        lo, hi = res["gain_ci95"]
        metric = res["gain_metric"]  # balanced top-1 here: make_features draws unequal val counts
        assert res["gain_over_init"] == pytest.approx(res[metric] - res["init"][metric]), name
        assert res["init_top1"] == res["init"]["top1"]
        assert lo <= res["gain_over_init"] <= hi and lo > 0, name  # clearly better than its init
        assert res["init"]["features"]["root"].endswith("features_init") and "verdict" in res["init"]


def test_no_init_and_stale_init(tmp_path, capsys):
    make_features(tmp_path / "features", seed=3)
    make_features(tmp_path / "features_init", seed=3)
    assert main_knn(["--features", str(tmp_path), "--no-init", "--no-progress"]) == 0
    assert "gain_over_init" not in json.loads((tmp_path / "features" / "probe_knn.json").read_text())
    np.save(tmp_path / "features_init" / "val_index.npy", np.arange(1, 61))  # other rows: stale
    assert main_knn(["--features", str(tmp_path), "--no-progress"]) == 2
    assert "features_init: its val rows or sources differ" in capsys.readouterr().err
