"""Shortcut baselines: metadata alone names toy sources that differ only in size, and is at chance when they
are identical; the tiny-image baseline sees a colour cast; the JPEG quality estimate reads the header."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from dsbias.audit.baselines import metadata_baseline, run_baselines, tiny_features, tiny_image_baseline
from dsbias.audit.metadata import jpeg_quality, metadata_features, quality_from_table
from dsbias.cli.baselines import main as baselines_main
from dsbias.config import load_config
from dsbias.data.manifest import build_manifest


def toy(signature: str, bias: float, train: int = 60, val: int = 60, *over: str):
    src = ", ".join(f"{{name: {n}, kind: toy, bias: {bias}, signature: {signature}}}" for n in ("a", "b", "c"))
    return load_config(None, [f"data.sources=[{src}]", f"data.per_source={{train: {train}, val: {val}}}",
                              "data.image_size=32", *over])


@pytest.mark.parametrize("q", [12, 30, 50, 75, 90, 97])
def test_jpeg_quality_estimate(tmp_path, q):
    img = Image.fromarray(np.random.default_rng(q).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    path = tmp_path / "x.jpg"
    img.save(path, format="JPEG", quality=q)
    assert abs(jpeg_quality(path) - q) <= 1.5
    img.save(tmp_path / "x.png")
    assert np.isnan(jpeg_quality(tmp_path / "x.png")) and np.isnan(jpeg_quality(tmp_path / "missing.jpg"))
    assert quality_from_table([1] * 64) == 100.0


def test_metadata_features_columns(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buf, format="JPEG", quality=80)
    f = tmp_path / "a.jpg"
    f.write_bytes(buf.getvalue())
    rows = [{"width": 8, "height": 4, "format": "JPEG", "bytes": 500, "item": str(f)},
            {"width": 6, "height": 6, "format": "PNG", "bytes": 90, "item": "7"}]
    x, cols = metadata_features(rows)
    assert cols[-2:] == ["format=JPEG", "format=PNG"] and x.shape == (2, len(cols))
    assert x[0, cols.index("aspect")] == 2.0 and abs(x[0, cols.index("jpeg_quality")] - 80) <= 1.5
    assert np.isnan(x[1, cols.index("jpeg_quality")]) and x[1, cols.index("format=PNG")] == 1.0


def test_metadata_baseline_separates_size_only_sources():
    cfg = toy("[size]", 1.0)
    m = build_manifest(cfg.data)
    assert len({r["width"] for r in m.rows}) == 3  # sizes differ, nothing else
    rep = metadata_baseline(m)
    assert rep["top1"] == 1.0 and rep["n"] == 180


def test_metadata_baseline_is_at_chance_on_identical_sources():
    cfg = toy("[size]", 0.0, 150, 150)
    m = build_manifest(cfg.data)
    assert len({(r["width"], r["format"]) for r in m.rows}) == 1
    rep = metadata_baseline(m)
    assert rep["ci95"][0] <= 1 / 3 <= rep["ci95"][1], rep["top1"]


def test_tiny_image_baseline_sees_a_colour_cast():
    cfg = toy("[color]", 1.0, 150, 60)
    m = build_manifest(cfg.data)
    rep = tiny_image_baseline(m, cfg.data, workers=2)
    assert rep["ci95"][0] > 0.55, rep["top1"]  # chance 1/3
    assert tiny_features(Image.new("RGB", (20, 10), (255, 0, 0))).shape == (3 * 64 + 3 * 16,)


def test_baselines_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert baselines_main(["--out", str(out), "--max-train", "20", "data=toy", "data.per_source={train: 30, val: 15}",
                           "data.image_size=24"]) == 0
    assert (out / "baselines.json").is_file() and (out / "manifest.jsonl").is_file()
    res = json.loads((out / "baselines.json").read_text())
    assert res["metadata"]["n_train"] == 60 and res["tiny"]["n"] == 45
    assert baselines_main(["--run", str(out), "--no-tiny", "--max-train", "20"]) == 0
    again = json.loads((out / "baselines.json").read_text())
    assert again["metadata"]["top1"] == res["metadata"]["top1"] and "tiny" not in again
    text = capsys.readouterr().out
    assert "metadata" in text and "tiny" in text and "alpha" in text
    assert run_baselines  # public entry point exists
