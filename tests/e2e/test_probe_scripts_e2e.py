"""Probes: kNN equals a brute-force torch oracle, the linear probe is right and honest, CLIs write full JSON."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import make_features


@pytest.mark.slow
def test_scripts_end_to_end(tmp_path):
    make_features(tmp_path / "features")
    for script, out in (("probe/knn.py", "probe_knn.json"), ("probe/linear.py", "probe_linear.json"),
                        ("probe/cluster.py", "probe_cluster.json")):
        r = subprocess.run([sys.executable, script, "--features", str(tmp_path)], capture_output=True, text=True,
                           env={"PYTHONPATH": ".", "PATH": ""}, timeout=300)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "features" / out).is_file()
    r = subprocess.run([sys.executable, "probe/knn.py", "--features", str(tmp_path / "nowhere")], capture_output=True,
                       text=True, env={"PYTHONPATH": "."}, timeout=300)
    assert r.returncode == 2 and "no meta.json" in r.stderr and "Traceback" not in r.stderr
