"""Shared fixtures: tiny data configs and image folders made in the test (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Run every test from the repo root so ``configs/`` presets resolve as they do for users."""
    monkeypatch.chdir(REPO)


def write_images(folder: Path, n: int, colour: tuple[int, int, int], size: int = 24, seed: int = 0) -> list[Path]:
    """Write ``n`` small noisy PNGs of a base colour into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        p = folder / f"img_{i:04d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def image_folders(tmp_path: Path) -> dict[str, Path]:
    """Two folder sources of 20 images each (red-ish and blue-ish)."""
    roots = {"red": tmp_path / "red", "blue": tmp_path / "blue"}
    write_images(roots["red"], 20, (200, 60, 60), seed=1)
    write_images(roots["blue"], 20, (60, 60, 200), seed=2)
    return roots


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG-encode an ``[H, W, 3]`` uint8 array."""
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Write an uncompressed tar with exactly these ``(name, bytes)`` members (names taken verbatim)."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path
