"""ssl/extract.py --backbone as users run it: killed with SIGKILL and rerun, split over processes and resumed by a
different number of them, and the backbones study end to end; every result equals an uninterrupted extraction."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TINY_EXTRACT

from dsbias.features import store
from dsbias.features.store import load_features
from dsbias.models import tiny
from dsbias.studies.runner import FEATURE_PROBES

ENV = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _extract_cmd(out, *args, processes=1):
    multi = ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", "29547"] if processes > 1 else []
    return [sys.executable, "-m", "accelerate.commands.launch", *multi, "ssl/extract.py", "--out", str(out),
            *TINY_EXTRACT, *args]


def _run(cmd):
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


def _same(a, b):
    fa, fb = load_features(a, mmap=False), load_features(b, mmap=False)
    for split in ("train", "val"):
        for part in ("features", "labels", "index"):
            assert np.array_equal(getattr(getattr(fa, split), part), getattr(getattr(fb, split), part)), (split, part)
    assert fa.meta == fb.meta


@pytest.mark.slow
def test_sigkill_then_rerun_equals_straight_extraction(tmp_path):
    e = tiny.save_tiny_timm(tmp_path / "m")
    args = ["--backbone", e["backbone"], "--weights", e["weights"], f"extract.kwargs={json.dumps(e['kwargs'])}",
            "data.per_source={train: 300, val: 30}"]
    _run(_extract_cmd(tmp_path / "straight", *args))
    out = tmp_path / "killed"
    proc = subprocess.Popen(_extract_cmd(out, *args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while len(store.completed_blocks(out / "features", "train")) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its worker: as a preempted job dies
    proc.wait()
    written = store.completed_blocks(out / "features", "train")
    assert 3 <= len(written) < 113 and not (out / "features" / "meta.json").exists(), "killed too late to test"
    _run(_extract_cmd(out, *args))
    _same(tmp_path / "straight", out)


@pytest.mark.slow
def test_two_processes_stopped_then_one_process_finishes_identically(tmp_path):
    e = tiny.save_tiny_hf(tmp_path / "hf")
    args = ["--backbone", e["backbone"]]
    _run(_extract_cmd(tmp_path / "straight", *args))
    out = tmp_path / "mixed"
    _run(_extract_cmd(out, *args, "extract.stop_after=1", processes=2))
    assert store.completed_blocks(out / "features", "train") == {0, 2}  # each process wrote its first block
    _run(_extract_cmd(out, *args))
    _same(tmp_path / "straight", out)
    assert json.loads((out / "provenance.json").read_text())["processes"] == 1


@pytest.mark.slow
def test_backbones_study_end_to_end(tmp_path):
    entries = [tiny.save_tiny_timm(tmp_path / "m"), tiny.save_tiny_hf(tmp_path / "hf")]
    out = tmp_path / "study"
    cmd = [sys.executable, "tools/study.py", "--study", "backbones", "--tiny", "--out", str(out), "--no-baselines",
           "data.per_source={train: 40, val: 20}", f"backbones={json.dumps(entries)}"]
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-2000:]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(FEATURE_PROBES) and {r["init"] for r in rows} == {"pretrained", "random"}
    for r in rows:  # each row is its run's probe file
        res = json.loads((out / "runs" / r["run"] / "features" / f"probe_{r['probe']}.json").read_text())
        assert float(r["top1"]) == pytest.approx(res["top1"]) and res["n_val"] == 80
    meta = json.loads((out / "runs" / rows[0]["run"] / "features" / "meta.json").read_text())
    assert meta["backbone"] == "timm:vit_tiny_patch16_224" and meta["image_size"] == 32
    report = (out / "report.md").read_text()
    assert "What the weights add" in report and (out / "figures" / "backbones.png").is_file()
