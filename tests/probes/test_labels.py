"""The labels a probe scores are checked first (issue 13, item 2): one source is an error, not "100% separable";
a val source unseen in train, or a thin one, is a warning in the table and in the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_features

from dsbias.cli.cluster import main as cluster_main
from dsbias.cli.knn import main as knn_main
from dsbias.cli.linear import main as linear_main
from dsbias.features.store import FeatureError, load_features, result_path, write_split
from dsbias.probes.cluster import run_cluster
from dsbias.probes.knn import run_knn
from dsbias.probes.labels import check_labels
from dsbias.probes.linear import run_linear


def _relabel(root, split, labels):
    fs = load_features(root, mmap=False)
    part = getattr(fs, split)
    write_split(root, split, np.asarray(part.features), np.asarray(labels, dtype=np.int64), np.asarray(part.index))


@pytest.mark.parametrize("split", ["train", "val"])
def test_one_source_is_an_error(tmp_path, split):
    root = make_features(tmp_path, n=(60, 12))
    _relabel(root, split, np.zeros(60 if split == "train" else 12))
    fs = load_features(root)
    with pytest.raises(FeatureError, match=rf"{split}_labels.npy: rows of 1 source\(s\) \(only a, of 3"):
        check_labels(fs)
    for run in (lambda: run_knn(fs, progress=False), lambda: run_linear(fs, max_iter=5),
                lambda: run_cluster(fs, split=split, n_perm=9)):
        with pytest.raises(FeatureError):
            run()


@pytest.mark.parametrize("main,flags", [(knn_main, ["--no-progress"]), (linear_main, ["--no-progress"]),
                                        (cluster_main, ["--permutations", "9"])])
def test_one_source_cli_exits_2(tmp_path, capsys, main, flags):
    root = make_features(tmp_path, n=(60, 12))
    _relabel(root, "val", np.zeros(12))
    assert main(["--features", str(root), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "separability needs >= 2" in err[0]
    assert not any(result_path(root, n).exists() for n in ("knn", "linear", "cluster"))


def test_unseen_and_thin_sources_warn_in_table_and_json(tmp_path, capsys):
    root = make_features(tmp_path, n=(60, 30), val_labels=np.array([0, 1, 2] * 10))
    _relabel(root, "train", np.array([0, 1] * 29 + [0, 1]))  # c never in train
    assert knn_main(["--features", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: val source(s) ['c'] have no train rows" in out
    saved = json.loads(result_path(root, "knn").read_text())
    assert any("['c'] have no train rows" in w for w in saved["warnings"])
    res, _ = run_cluster(load_features(root), n_perm=9)  # clustering fits no labels: an unseen source is fine
    assert not any("no train rows" in w for w in res["warnings"])

    _relabel(root, "train", np.array([0, 1] * 28 + [2] * 4))  # c has 4 train rows: thin
    warnings = check_labels(load_features(root), min_rows=10)
    assert warnings == ["train: source(s) with fewer than 10 rows {'c': 4}: their recall rests on a handful of "
                        "images"]
    _relabel(root, "train", np.array([0, 1] * 30))
    _relabel(root, "val", np.array([0, 1] * 15))  # c listed in meta.json, no rows anywhere
    assert "listed in meta.json have no rows" in check_labels(load_features(root))[0]
