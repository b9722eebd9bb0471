"""The anatomy figure in miniature: on toy sources whose only signature is a colour cast, the transformations
that remove chroma drop to chance and the one that keeps the mean colour does not (pixel probe)."""

from __future__ import annotations

import json

from dsbias.audit.pixel_probe import format_anatomy_table, pixel_probe_table
from dsbias.cli.anatomy_pixels import main as pixel_probe_main
from dsbias.config import load_config
from dsbias.data.manifest import build_manifest


def test_colour_signature_anatomy():
    cfg = load_config(None, ["data=toy_color", "data.per_source={train: 150, val: 90}"])
    m = build_manifest(cfg.data)
    rows = {r["transform"]: r for r in pixel_probe_table(m, cfg.data, ("", "grayscale", "lpf", "mean_rgb"), workers=2)}
    for name in ("grayscale", "lpf"):  # chroma removed: at chance
        lo, hi = rows[name]["ci95"]
        assert lo <= 1 / 3 <= hi, (name, rows[name]["top1"])
    for name in ("reference", "mean_rgb"):  # the mean colour keeps the cast: far above chance
        assert rows[name]["ci95"][0] > 0.45, (name, rows[name]["top1"])
    assert "| grayscale |" in format_anatomy_table(list(rows.values()))


def test_pixel_probe_cli(tmp_path, capsys):
    out = tmp_path / "a"
    assert pixel_probe_main(["--out", str(out), "--transforms", "reference,hog", "data=toy_color",
                             "data.per_source={train: 20, val: 10}"]) == 0
    rows = json.loads((out / "anatomy_pixels.json").read_text())
    assert [r["transform"] for r in rows] == ["reference", "hog"]
    assert "| hog |" in capsys.readouterr().out
