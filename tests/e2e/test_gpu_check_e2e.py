"""tools/gpu_check.py's end-to-end parts on CPU: the method runs (c), shrunk to 32 px and fp32 (the scripts, the
stop at step 15 and the resume to 30, extraction and both probes, as the GPU run drives them), and 2 processes
vs 1 (e) with gloo on CPU instead of one GPU."""

from __future__ import annotations

import pytest

from dsbias.bench import gpu_runs


@pytest.mark.slow
def test_method_runs_drive_the_scripts_end_to_end(monkeypatch):
    small = [x.replace("data.image_size=224", "data.image_size=32") for x in gpu_runs.SMALL_224]
    small = [x.replace("{train: 160, val: 32}", "{train: 48, val: 12}") for x in small]
    monkeypatch.setattr(gpu_runs, "SMALL_224", [*small, "data.num_workers=0", "model.kwargs={}"])
    name = "mae vit_tiny"
    path, over = gpu_runs.METHODS[name]
    monkeypatch.setattr(gpu_runs, "METHODS", {name: (path, [*over, "model=vit_tiny", "model.kwargs={patch_size: 8}"])})
    rows = gpu_runs.method_runs(precisions=("no",), full_chain="no")
    assert len(rows) == 1, rows
    r = rows[0]
    assert "30 steps, resumed at 15: True" in r["detail"] and "knn exit 0" in r["detail"], r
    assert "linear exit 0" in r["detail"], r


@pytest.mark.slow
def test_two_processes_extract_and_evaluate_as_one():
    rows = gpu_runs.two_vs_one(("data.image_size=32", "data.per_source={train: 8, val: 24}", "data.num_workers=0"))
    assert [r["what"] for r in rows] == ["extraction 2 vs 1 process", "classification eval 2 vs 1 process"], rows
    assert all(r["ok"] for r in rows), rows
