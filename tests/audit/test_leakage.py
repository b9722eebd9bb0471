"""Leakage audit: planted near duplicates are found and classified; confidence extremes are ordered."""

from __future__ import annotations

import json

import numpy as np

from dsbias.audit.leakage import confidence_extremes, duplicate_report, near_duplicates
from dsbias.cli.leakage import main as leakage_main
from dsbias.features.store import load_features, write_meta, write_split
from dsbias.runs import write_json


def planted(tmp_path):
    """40 train + 20 val random features of 2 sources, with three planted near copies:
    val 45 ~ train 3 (train-val), train 10 (src 0) ~ train 30 (src 1) (cross-source), val 50 ~ val 51 (within)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 32)).astype(np.float32)
    labels = np.array([0] * 20 + [1] * 20 + [0] * 10 + [1] * 10)
    x[45] = x[3] + 0.01 * rng.normal(size=32)
    x[30] = 2.0 * x[10] + 0.01 * rng.normal(size=32)  # scale does not matter: cosine
    x[51] = x[50] + 0.01 * rng.normal(size=32)
    root = tmp_path / "run" / "features"
    write_split(root, "train", x[:40], labels[:40], np.arange(40))
    write_split(root, "val", x[40:], labels[40:], np.arange(40, 60))
    write_meta(root, {"dim": 32, "sources": ["s0", "s1"]})
    rows = [{"index": i, "item": f"img{i}.png"} for i in range(60)]
    return root, rows


def test_planted_duplicates_are_found_and_classified(tmp_path):
    root, rows = planted(tmp_path)
    rep = duplicate_report(load_features(root), rows, threshold=0.95, k=5)
    assert rep["counts"] == {"train-val": 1, "cross-source": 1, "within-source": 1}
    assert rep["val_with_train_duplicate"] == [45]
    pairs = {(p["a"]["index"], p["b"]["index"]): p["kind"] for p in rep["top_pairs"]}
    assert pairs == {(3, 45): "train-val", (10, 30): "cross-source", (50, 51): "within-source"}
    assert rep["top_pairs"][0]["a"]["item"] == f"img{rep['top_pairs'][0]['a']['index']}.png"
    assert rep["saturated"] == 0


def test_saturation_is_reported():
    x = np.ones((6, 4), np.float32)  # all identical: every neighbour above any threshold
    pairs, saturated = near_duplicates(x, np.zeros(6, np.int64), np.zeros(6, np.int64), 0.99, k=2)
    assert saturated == 6 and len(pairs) >= 6
    pairs, saturated = near_duplicates(x, np.zeros(6, np.int64), np.zeros(6, np.int64), 0.99, k=5)
    assert saturated == 0 and len(pairs) == 15  # k covers everyone: all C(6, 2) pairs, exact


def test_leakage_cli(tmp_path, capsys):
    root, rows = planted(tmp_path)
    # A run dir's manifest names the images.
    with open(root.parent / "manifest.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    write_json(root.parent / "manifest.json", {"rows": 60, "sources": ["s0", "s1"]})
    assert leakage_main(["--features", str(root.parent), "--threshold", "0.95", "--k", "5"]) == 0
    rep = json.loads((root / "leakage.json").read_text())
    assert rep["pairs"] == 3
    assert "img45.png" in capsys.readouterr().out


def test_confidence_extremes():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.95, 0.05]])
    labels = np.array([0, 0, 0, 1, 1])
    rows = [{"index": 10 + i, "item": f"i{i}"} for i in range(5)]
    out = confidence_extremes(probs, labels, rows, ["a", "b"], n=2)
    assert [e["index"] for e in out["a"]["most"]] == [10, 11]
    assert [e["index"] for e in out["a"]["least"]] == [12, 11]
    assert out["a"]["least"][0]["predicted"] == "b" and out["b"]["least"][0]["p_true"] == 0.05
