"""tools/gpu_check.py's CPU side: arguments, the one-line stop without a GPU, the table, failures as rows, and
configs of its runs that load (a typo there would only show on the GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO

from dsbias.bench import gpu_check, gpu_runs
from dsbias.cli.gpu_check import main
from dsbias.config import load_config
from dsbias.typedconfig import find_preset

ROWS = [gpu_check.row("a pytest -m gpu", True, "5 passed", 40.0),
        gpu_check.row("b faiss 2 shards on one GPU, 200k bank", False, "ids equal | 0.91", 3.2),
        gpu_check.row("d ConvNeXt-T bf16", None, "engine 2500 img/s", 50.0)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_it_stops_with_one_line(capsys, tmp_path):
    assert main(["--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: tools/gpu_check.py needs a CUDA GPU")
    assert not (tmp_path / "x.json").exists()


def test_unknown_checks_are_refused(capsys):
    assert main(["--only", "az"]) == 2
    assert "--only 'az': use letters of abcdef" in capsys.readouterr().err


def test_table_marks_and_counts_failures():
    text = gpu_check.table(ROWS, "gpu_check on a made-up GPU")
    lines = text.splitlines()
    assert lines[0] == "## gpu_check on a made-up GPU"
    assert "| b | faiss 2 shards on one GPU, 200k bank | FAIL | ids equal / 0.91 | 3.2 |" in lines
    assert "| d | ConvNeXt-T bf16 |  | engine 2500 img/s | 50.0 |" in lines  # a measurement: no verdict
    assert lines[-1] == "3 rows, 1 failed"


def test_a_crashing_check_becomes_a_row_and_the_others_still_run(monkeypatch):
    def boom():
        raise RuntimeError("CUDA error: no kernel image is available")

    monkeypatch.setattr(gpu_check, "check_pytest", boom)
    monkeypatch.setattr(gpu_check, "check_faiss", lambda: [ROWS[1]])
    rows = gpu_check.run_checks(["a", "b"], log=lambda line: None)
    assert [r["check"] for r in rows] == ["a", "b"]
    assert rows[0]["ok"] is False and "no kernel image" in rows[0]["detail"]


@pytest.mark.parametrize("name", sorted(gpu_runs.METHODS))
def test_the_method_runs_load_as_configs(name):
    path, over = gpu_runs.METHODS[name]
    preset = "classify/default" if path == "probe/classify.py" else "pretrain"
    for prec in ("no", "bf16", "fp16"):
        cfg = load_config(find_preset(preset), [*gpu_runs.SMALL_224, *over, f'train.mixed_precision="{prec}"'])
        assert cfg.train.mixed_precision == prec
    assert cfg.data.image_size == 224 and (REPO / path).is_file()
    steps = cfg.train.samples // cfg.train.batch_size
    assert steps == 30 and cfg.train.save_every == 15  # stopped at 15, resumed to 30


def test_the_throughput_and_loader_runs_load_as_configs(tmp_path):
    for prec, cl, tf32 in gpu_check.SETTINGS.values():
        over = [*gpu_check.THROUGHPUT_RUN, f'train.mixed_precision="{prec}"', f"train.channels_last={cl}",
                f"train.tf32={tf32}"]
        cfg = load_config(find_preset("classify/default"), over)
        assert cfg.model.name == "convnext_tiny" and cfg.train.batch_size == 128 and cfg.train.channels_last == cl
    assert load_config(None, gpu_check.LOADER_RUN).method.supervised.augment.randaug


def test_the_linear_memory_features_are_three_float32_blobs():
    x, y = gpu_check._blobs(3000, 16, seed=0)
    assert x.dtype == np.float32 and x.shape == (3000, 16) and set(np.unique(y)) == {0, 1, 2}
    means = np.stack([x[y == c].mean(0) for c in range(3)])
    assert np.abs(means[0] - means[1]).mean() > 0.02  # the classes are apart


def test_the_linear_memory_check_reads_the_probes_report(monkeypatch):
    # Its GPU calls stood in for on the CPU: what is checked is the plumbing (the probe returns its report and
    # its predictions; reading the report as the whole result broke this check on the GPU machine only).
    from types import SimpleNamespace

    import dsbias.probes.linear as linear

    real = linear.run_linear
    monkeypatch.setattr(linear, "run_linear", lambda fs, **kw: real(fs, **{**kw, "device": "cpu"}))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=140 * 2**30))
    [r] = gpu_check.check_linear_memory(n=3000, d=16)
    assert r["ok"] is True and "peak 1.0 GiB of 140 GiB, top-1 0." in r["detail"], r
