"""The anatomy scripts run as users run them (``python tools/x.py``), end to end on toy data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsbias.features.store import write_meta, write_split

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.mark.slow
def test_tools_end_to_end(tmp_path):
    out = tmp_path / "base"
    text = run("tools/baselines.py", "--out", str(out), "data=toy", "data.per_source={train: 60, val: 30}")
    res = json.loads((out / "baselines.json").read_text())
    assert f"{100 * res['metadata']['top1']:.1f}%" in text and res["tiny"]["n"] == 90
    text = run("tools/anatomy_pixels.py", "--out", str(tmp_path / "anat"), "--transforms", "reference,grayscale",
               "data=toy_color", "data.per_source={train: 40, val: 20}")
    assert "| grayscale |" in text
    # Leakage on a features dir beside the baselines' manifest: val 95 is a copy of train 0.
    x = np.random.default_rng(0).normal(size=(270, 16)).astype(np.float32)
    x[195] = x[0]
    labels = np.repeat([0, 1, 2], 60).tolist() + np.repeat([0, 1, 2], 30).tolist()
    write_split(out / "features", "train", x[:180], np.array(labels[:180]), np.arange(180))
    write_split(out / "features", "val", x[180:], np.array(labels[180:]), np.arange(180, 270))
    write_meta(out / "features", {"dim": 16, "sources": ["alpha", "beta", "gamma"]})
    text = run("tools/leakage.py", "--features", str(out), "--threshold", "0.99")
    rep = json.loads((out / "features" / "leakage.json").read_text())
    assert rep["val_with_train_duplicate"] == [195] and "train-val 1" in text
