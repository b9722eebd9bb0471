"""End to end: probe/classify.py learns biased toy sources, stays at chance on the null, and memorises pseudo-sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsbias.config import load_config
from dsbias.pipelines.classify import classify

REPO = Path(__file__).resolve().parents[2]


DEFAULT = REPO / "configs/classify/default.yaml"


SMALL = ["data.image_size=32", "data.num_workers=0", "model=convnext_atto_1_10", "method.supervised.augment=none",
         "train.log_with=[]", "train.log_every=5", "classify.eval_every=0"]


STRONG = ("data.sources=[{name: a, kind: toy, bias: 1.0}, {name: b, kind: toy, bias: 1.0}, "
          "{name: c, kind: toy, bias: 1.0}]")


@pytest.mark.slow
def m_labels(run, index):
    rows = [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines()]
    return np.array([rows[i]["source_id"] for i in index])


def test_cli_writes_the_metrics_contract(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "probe/classify.py", "--out", str(out), *SMALL, "data.per_source={train: 32, val: 16}",
         "train.batch_size=16", "train.samples=64"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    for key in ("top1", "chance", "ci95", "per_source", "confusion", "sources", "train_top1", "majority", "n_val",
                "steps", "loss_decreased"):
        assert key in m, key
    assert m["n_val"] == 48 and m["n_train"] == 96 and m["chance"] == pytest.approx(1 / 3)
    assert (out / "backbone.safetensors").is_file() and "top-1" in proc.stdout
    probs, index = np.load(out / "val_probs.npy"), np.load(out / "val_index.npy")
    assert probs.shape == (48, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert m["top1"] == pytest.approx(float(np.mean(probs.argmax(1) == m_labels(out, index))))
    assert m["params"] > 0
    page = (out / "report.html").read_text()  # the run's page, written by the command itself
    assert 'id="verdict"' in page and 'id="confusion"' in page and f"{100 * m['top1']:.1f}%" in page
    assert "report: " in proc.stdout and "KB" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("data,learns", [(STRONG, True), ("data=toy_null", False)], ids=["biased", "null"])
def test_classifier_learns_bias_and_stays_at_chance_on_the_null(tmp_path, data, learns):
    cfg = load_config(DEFAULT, ["data=toy", data, "data.per_source={train: 200, val: 100}", *SMALL,
                             "train.batch_size=32", "train.samples=4800", "optim.lr=0.002",
                             "optim.warmup_samples=320", f"out={tmp_path}"])
    m = classify(cfg)
    lo, hi = m["ci95"]
    if learns:
        assert lo > 0.5, f"val top-1 {m['top1']:.3f} (CI {lo:.3f}-{hi:.3f}) is not far above chance"
    else:
        assert lo <= 1 / 3 <= hi, f"val top-1 {m['top1']:.3f} (CI {lo:.3f}-{hi:.3f}) on the null is not at chance"


@pytest.mark.slow
def test_pseudo_datasets_are_memorised_but_val_is_at_chance(tmp_path):
    cfg = load_config(DEFAULT, ["data=toy_pseudo", "data.per_source={train: 16, val: 100}", *SMALL,
                             "train.batch_size=24", "train.samples=4800", "optim.lr=0.003", "optim.weight_decay=0",
                             "optim.warmup_samples=240", "method.supervised.label_smoothing=0", f"out={tmp_path}"])
    m = classify(cfg)
    assert m["train_top1"] >= 0.9, f"train top-1 {m['train_top1']:.3f}: 48 images were not memorised"
    lo, hi = m["ci95"]
    assert lo <= 1 / 3 <= hi, f"pseudo-dataset val {m['top1']:.3f} (CI {lo:.3f}-{hi:.3f}) is not at chance"
    assert m["loss_decreased"] is True and not m["warnings"]
