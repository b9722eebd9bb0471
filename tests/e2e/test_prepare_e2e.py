"""prepare.py writes shards the paper's way, records native size/format, and --reencode makes codecs uniform."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import prepare_cfg

from dsbias.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tools_prepare_then_manifest_then_run_consumes_it(tmp_path):
    """CLI round trip: prepare shards, draw a manifest from them, consume it as data.manifest."""
    cfg = prepare_cfg(tmp_path, tmp_path / "unused")
    sources = "[" + ", ".join(f"{{name: {s.name}, kind: folder, path: '{s.path}'}}" for s in cfg.data.sources) + "]"
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}

    def run(*args: str) -> str:
        p = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout

    out = run("tools/prepare.py", f"data.sources={sources}", "--out", str(tmp_path / "s"), "--reencode", "png")
    assert "written" in out
    data_yaml = tmp_path / "s" / "data.yaml"
    out = run("tools/manifest.py", f"data={data_yaml}", "data.per_source={train: 2, val: 1}", "--out",
              str(tmp_path / "m"))
    assert "use it with data.manifest=" in out
    from dsbias.data.manifest import load_or_build_manifest

    data = load_config(None, [f"data={data_yaml}", f"data.manifest={tmp_path / 'm' / 'manifest.jsonl'}"]).data
    assert len(load_or_build_manifest(data, tmp_path / "run" / "manifest.jsonl")) == 6
