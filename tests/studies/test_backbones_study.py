"""The backbones study: each spec extracted with its weights and at random init, probed, one table + one figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsbias.cli.study import main as study_main
from dsbias.config import load_config
from dsbias.errors import UserError
from dsbias.stats import classification_report
from dsbias.studies import runner as study_mod
from dsbias.studies.backbones import parse_backbones
from dsbias.studies.report import write_report
from dsbias.typedconfig import dump_yaml


def _fake_extract(calls: list[list[str]]):
    """Stand-in for subprocess.run: ssl/extract.py writes its config, each probe its JSON (weights beat random)."""

    def run(cmd, logf):
        calls.append(cmd)
        if "--out" in cmd:
            out = Path(cmd[cmd.index("--out") + 1])
            cfg = load_config(None, [*[a for a in cmd[cmd.index("--out") + 2:] if "=" in a], f"out={out}"])
            (out / "config.yaml").write_text(dump_yaml(cfg))
            return 0
        root = Path(cmd[cmd.index("--features") + 1])
        cfg = load_config(root / "config.yaml")
        good = 0.9 if cfg.extract.init == "pretrained" else 0.5
        rng = np.random.default_rng(len(calls))
        y = np.repeat(np.arange(4), 30)
        pred = np.where(rng.random(y.size) < good, y, rng.integers(0, 4, y.size))
        (root / "features").mkdir(parents=True, exist_ok=True)
        probe = Path(cmd[1]).stem
        (root / "features" / f"probe_{probe}.json").write_text(
            json.dumps({**classification_report(y, pred, list("abcd")), "n_val": int(y.size)}))
        return 0

    return run


def test_backbones_study_pairs_weights_with_random_init(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(study_mod, "execute", _fake_extract(calls))
    entries = parse_backbones(["timm:resnet18", {"backbone": "hf:/models/dinov2-small", "pool": "avg"},
                               {"backbone": "timm:vit_tiny_patch16_224", "weights": "/w/v.safetensors",
                                "kwargs": {"img_size": 32}}])
    cfg = load_config(None, ["data=toy4"])
    out = tmp_path / "st"
    rows = study_mod.run_study("backbones", out, cfg, ["data=toy4"], tiny=True, echo=lambda s: None,
                               baselines=False, backbones=entries)
    extracts = [c for c in calls if "--out" in c]
    assert len(extracts) == 6 and all(c[1].endswith("ssl/extract.py") for c in extracts)
    random = [c for c in extracts if "extract.init=random" in c]
    assert len(random) == 3 and not any("extract.weights" in a for c in random for a in c)
    vit = next(c for c in extracts if "extract.weights=\"/w/v.safetensors\"" in c)
    assert 'extract.kwargs={"img_size": 32}' in vit and "extract.init=pretrained" in vit
    assert len(rows) == 6 * len(study_mod.FEATURE_PROBES) and {r["init"] for r in rows} == {"pretrained", "random"}
    report = write_report("backbones", rows, out, "python tools/study.py --study backbones").read_text()
    assert (out / "figures" / "backbones.png").stat().st_size > 1000
    assert "| timm:resnet18 | linear |" in report and "hf:dinov2-small pool=avg" in report
    # Rerun: every run has its probe files, nothing runs again.
    calls.clear()
    study_mod.run_study("backbones", out, cfg, ["data=toy4"], tiny=True, echo=lambda s: None, baselines=False,
                        backbones=entries)
    assert calls == []


def test_backbones_list_errors_are_one_line(capsys):
    with pytest.raises(UserError, match="non-empty list"):
        parse_backbones("timm:resnet18")
    with pytest.raises(UserError, match="unknown key"):
        parse_backbones([{"backbone": "timm:resnet18", "weight": "x"}])
    assert study_main(["--study", "backbones", "--tiny"]) == 2
    assert "backbones=[" in capsys.readouterr().err
