"""The run dir under a second process, a failed start and a finished rerun (issue 13, items 4 and 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO, TINY_RUN, train_tiny, write_images

from dsbias.config import load_config
from dsbias.errors import MissingFileError
from dsbias.pipelines.stages import build_data, prepare_run
from dsbias.runs import JsonlLog, RunDir, RunLockedError, lock_run, unlock_run, write_json

TAKE_LOCK = ("import sys, time; from dsbias.runs import RunDir, lock_run, RunLockedError\n"
             "try:\n    lock_run(RunDir.at(sys.argv[1]))\nexcept RunLockedError as e:\n"
             "    print(e); sys.exit(2)\nprint('locked', flush=True); time.sleep(float(sys.argv[2]))\n")


def _take_lock(path, hold: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TAKE_LOCK, str(path), str(hold)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_second_process_is_refused_with_the_holders_pid(tmp_path):
    run = RunDir.at(tmp_path / "run")
    lock_run(run)
    try:
        lock_run(run)  # the holder itself: a no-op (a resume in the same process)
        p = _take_lock(run.root)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 2 and f"in use by process {os.getpid()}" in out and str(run.lock) in out
    finally:
        unlock_run(run)
    p = _take_lock(run.root)
    assert p.communicate(timeout=60)[0].strip() == "locked" and p.returncode == 0


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    run = RunDir.at(tmp_path / "run")
    p = _take_lock(run.root, hold=120)
    assert p.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=f"process {p.pid}"):
        lock_run(run)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert run.lock.read_text().strip() == str(p.pid)  # the stale file is still there...
    lock_run(run)  # ...and simply taken over
    try:
        assert run.lock.read_text().strip() == str(os.getpid())
    finally:
        unlock_run(run)


def _folders(tmp_path, a):
    srcs = f"[{{name: a, kind: folder, path: '{a}'}}, {{name: b, kind: folder, path: '{tmp_path / 'b'}'}}]"
    return [f"data.sources={srcs}", "data.per_source={train: 6, val: 2}", "data.num_workers=0", "train.log_with=[]"]


def test_failed_start_does_not_block_the_corrected_rerun(tmp_path):
    write_images(tmp_path / "good", 10, (200, 0, 0))
    write_images(tmp_path / "b", 10, (0, 0, 200), seed=1)
    out = f"out={tmp_path / 'run'}"
    cfg = load_config(None, [*_folders(tmp_path, tmp_path / "typo"), out])
    run, acc = prepare_run(cfg)
    with pytest.raises(MissingFileError, match=r"data.sources\[a\].path: folder .*typo does not exist"):
        build_data(cfg, run, acc)
    fixed = load_config(None, [*_folders(tmp_path, tmp_path / "good"), out])
    run, acc = prepare_run(fixed)  # not refused: nothing was trained
    manifest = build_data(fixed, run, acc)
    assert len(manifest) == 16 and load_config(run.config).data.sources[0].path == str(tmp_path / "good")


def test_started_run_refusal_says_what_differs_and_how_to_start_over(tmp_path):
    train_tiny(tmp_path / "a", "train.samples=16")
    with pytest.raises(Exception, match=r"optim.blr: 0.05 -> 0.1\) \(resume with the same settings, give a new "
                                        r"--out, or delete .* to start over\)"):
        train_tiny(tmp_path / "a", "train.samples=16", "optim.blr=0.1")


def test_finished_run_rerun_reports_its_recorded_result(tmp_path):
    *_, first = train_tiny(tmp_path / "a", "train.samples=16")
    *_, again = train_tiny(tmp_path / "a", "train.samples=16")
    assert again["already_done"] and again["steps"] == first["steps"]
    assert again["final"]["loss"] == pytest.approx(first["final"]["loss"])
    assert again["img_per_s"] == pytest.approx(first["img_per_s"]) and again["img_per_s"] > 0
    records = JsonlLog(tmp_path / "a" / "log.jsonl").read()
    assert sum(r.get("event") == "end" for r in records) == 1  # a rerun appends no second start/end


def test_backbone_file_gets_the_usual_permissions(tmp_path):
    from dsbias.models.backbones import create_backbone, save_backbone

    cfg = load_config(None, TINY_RUN)
    save_backbone(tmp_path, create_backbone(cfg.model, 16), {"image_size": 16})
    write_json(tmp_path / "other.json", {})
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "backbone.safetensors", tmp_path / "other.json",
                                                        tmp_path / "backbone.json")}
    assert len(set(modes.values())) == 1, modes
