"""prepare.py writes shards the paper's way, records native size/format, and --reencode makes codecs uniform."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsbias.config import load_config

REPO = Path(__file__).resolve().parents[2]


def _images(root: Path, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    files = {"big.jpg": (600, 800, "JPEG"), "small.png": (200, 300, "PNG"), "tall.webp": (700, 520, "WEBP")}
    out = {}
    for name, (h, w, fmt) in files.items():
        arr = rng.integers(0, 255, (h // 10, w // 10, 3), dtype=np.uint8)
        Image.fromarray(arr).resize((w, h)).save(root / name, fmt)
        out[name] = root / name
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return out


def _cfg(tmp_path: Path, out: Path):
    a, b = _images(tmp_path / "a", 0), _images(tmp_path / "b", 1)
    assert a and b
    return load_config(None, [f"data.sources=[{{name: a, kind: folder, path: '{tmp_path / 'a'}'}}, "
                              f"{{name: b, kind: folder, path: '{tmp_path / 'b'}'}}]", f"out={out}",
                              "data.per_source={train: 2, val: 1}", "data.dedup=ignore"])


def _members(tar: Path) -> list[str]:
    with tarfile.open(tar) as tf:
        return tf.getnames()


@pytest.mark.slow
def test_tools_prepare_then_manifest_then_run_consumes_it(tmp_path):
    """CLI round trip: prepare shards, draw a manifest from them, consume it as data.manifest."""
    cfg = _cfg(tmp_path, tmp_path / "unused")
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
