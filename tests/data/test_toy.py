"""Tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dsbias.config import load_config
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.registry import create_sources
from dsbias.data.sources.toy import make_signature


def toy_cfg(*over: str):
    return load_config(None, ["data=toy", "data.per_source={train: 40, val: 10}", *over])


def _stats(img: Image.Image) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    lap = a[1:-1, 1:-1] * 4 - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return np.concatenate([a.mean((0, 1)), [np.abs(lap).mean()]])


def _source_stats(cfg, n=150) -> dict[str, np.ndarray]:
    readers = create_sources(cfg.data)
    return {name: np.stack([_stats(r.read(str(i))[0]) for i in range(n)]) for name, r in readers.items()}


def test_toy_is_deterministic():
    cfg = toy_cfg()
    a = create_sources(cfg.data)["beta"].read("3")[0]
    b = create_sources(cfg.data)["beta"].read("3")[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    c = create_sources(toy_cfg("data.seed=1").data)["beta"].read("3")[0]
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_toy_sources_differ_with_bias_and_agree_without():
    """Mean colour and high-frequency energy: far apart at bias 0.5, within sampling error at bias 0."""

    def max_z(stats: dict[str, np.ndarray]) -> float:
        names = list(stats)
        z = 0.0
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = stats[names[i]], stats[names[j]]
                se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
                z = max(z, float(np.max(np.abs(a.mean(0) - b.mean(0)) / se)))
        return z

    assert max_z(_source_stats(toy_cfg())) > 8
    assert max_z(_source_stats(load_config(None, ["data=toy_null"]))) < 4


def test_toy_signature_bias_zero_is_identical():
    sigs = {make_signature(s, 3, 0.0, ["color", "noise", "blur", "jpeg", "size"], 64) for s in range(3)}
    assert len(sigs) == 1


def test_toy_size_signature_changes_native_size_only():
    cfg = toy_cfg("data.sources=[{name: a, kind: toy, signature: [size]}, {name: b, kind: toy, signature: [size]}]")
    m = build_manifest(cfg.data)
    sizes = {(r["source"], r["width"]) for r in m.rows}
    assert sizes == {("a", 96), ("b", 64)}
