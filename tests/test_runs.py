"""Tests."""

from __future__ import annotations

import numpy as np
import pytest

from dsbias.runs import JsonlLog, atomic_path, read_json, save_npy, write_json


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    f = tmp_path / "x.json"
    write_json(f, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(f) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert read_json(f) == {"a": 1}
    assert f.stat().st_mode & 0o044 == 0o044  # readable by others like any file, not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_save_npy_and_jsonl(tmp_path):
    save_npy(tmp_path / "a.npy", np.arange(3))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2]
    log = JsonlLog(tmp_path / "log.jsonl")
    log.write(step=1, loss=0.5)
    log.write(step=2, loss=0.25)
    assert [r["loss"] for r in log.read()] == [0.5, 0.25]
