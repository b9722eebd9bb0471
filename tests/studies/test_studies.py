"""Study runner: grids by name, resume without reruns, report numbers equal the run dirs' metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dsbias.config import load_config
from dsbias.errors import UserError
from dsbias.stats import classification_report
from dsbias.studies import catalogue
from dsbias.studies import runner as study_mod
from dsbias.studies.report import write_report
from dsbias.typedconfig import dump_yaml


def _fake_runner(calls: list[list[str]]):
    """Stand-in for subprocess.run: writes what probe/classify.py writes (config, log, metrics)."""

    def run(cmd, logf):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        over = [a for a in cmd[cmd.index("--out") + 2:] if "=" in a]
        cfg = load_config(None, [*over, f"out={out}"])
        (out / "config.yaml").write_text(dump_yaml(cfg))
        (out / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 5)))
        s = len(cfg.data.sources) if not cfg.data.pseudo else cfg.data.pseudo
        rng = np.random.default_rng(len(calls))
        y = np.repeat(np.arange(s), 20)
        pred = np.where(rng.random(y.size) < 0.7, y, rng.integers(0, s, y.size))
        rep = classification_report(y, pred, [f"s{i}" for i in range(s)])
        rep.update(train_top1=0.9, n_val=int(y.size))
        (out / "metrics.json").write_text(json.dumps(rep))
        return 0

    return run


def test_combos_cells_cover_every_triple_then_prefixes():
    cfg = load_config(None, ["data=toy4"])
    cells = study_mod.build_cells("combos", study_mod.StudyContext(cfg.data.sources, tiny=True))
    assert [c.labels["sources"] for c in cells] == [
        "alpha+beta+gamma", "alpha+beta+delta", "alpha+gamma+delta", "beta+gamma+delta", "alpha+beta+gamma+delta"]
    assert len({c.key for c in cells}) == len(cells)


def test_every_study_builds_cells():
    cfg = load_config(None, ["data=toy4"])
    ctx = study_mod.StudyContext(cfg.data.sources, tiny=True, backbones=({"backbone": "timm:resnet18"},))
    cells = study_mod.build_cells("all", ctx)
    assert {c.study for c in cells} == set(catalogue.STUDIES)
    # Without backbones, `all` is every study that needs no list of its own.
    no_list = study_mod.build_cells("all", study_mod.StudyContext(cfg.data.sources, tiny=True))
    assert {c.study for c in no_list} == set(catalogue.STUDIES) - {"backbones"}
    with pytest.raises(UserError, match="unknown"):
        catalogue.build_cells("nope", ctx)


def test_study_resumes_and_report_equals_run_metrics(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(study_mod, "execute", _fake_runner(calls))
    cfg = load_config(None, ["data=toy4"])
    out = tmp_path / "st"
    rows = study_mod.run_study("combos", out, cfg, ["data=toy4"], seeds=2, tiny=True, echo=lambda s: None)
    assert len(calls) == 10 and len(rows) == 10
    # Half-finished: remove two runs' results; only those two rerun.
    for run in ("combos-alpha+beta+gamma-s1", "combos-beta+gamma+delta-s0"):
        (out / "runs" / run / "metrics.json").unlink()
    calls.clear()
    rows = study_mod.run_study("combos", out, cfg, ["data=toy4"], seeds=2, tiny=True, echo=lambda s: None)
    assert sorted(Path(c[c.index("--out") + 1]).name for c in calls) == [
        "combos-alpha+beta+gamma-s1", "combos-beta+gamma+delta-s0"]
    report = write_report("combos", rows, out, "python tools/study.py --study combos --tiny")
    with open(out / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 10
    for r in csv_rows:
        metrics = json.loads((out / "runs" / r["run"] / "metrics.json").read_text())
        assert float(r["top1"]) == pytest.approx(metrics["top1"])
        assert float(r["ci_low"]) == pytest.approx(metrics["ci95"][0])
        assert float(r["chance"]) == pytest.approx(metrics["chance"])
        assert {"study", "run", "sources", "method", "probe", "transform", "seed", "ci_high"} <= set(r)
    text = report.read_text()
    mean = np.mean([float(r["top1"]) for r in csv_rows if r["cell"] == "combos-alpha+beta+gamma"])
    assert f"{100 * mean:.1f} ±" in text
    for png in ("combos_confusion.png", "combos_curves.png"):
        p = out / "figures" / png
        assert p.is_file() and p.stat().st_size > 5000 and f"figures/{png}" in text


def _fake_ssl_runner(calls: list[list[str]]):
    """Stand-in for the ssl cell's commands: pretraining writes the config; each probe writes its JSON with the
    random-init control (as the probes do on a pretraining run)."""

    def run(cmd, logf):
        calls.append(cmd)
        if "--out" in cmd:
            out = Path(cmd[cmd.index("--out") + 1])
            over = [a for a in cmd[cmd.index("--out") + 2:] if "=" in a]
            (out / "config.yaml").write_text(dump_yaml(load_config(None, [*over, f"out={out}"])))
            return 0
        feats = Path(cmd[cmd.index("--features") + 1]) / "features"
        feats.mkdir(exist_ok=True)
        name = Path(cmd[1]).stem
        rng = np.random.default_rng(len(calls))
        y = np.repeat(np.arange(4), 30)
        pred = np.where(rng.random(y.size) < 0.6, y, rng.integers(0, 4, y.size))
        sources = ["alpha", "beta", "gamma", "delta"]
        rep = classification_report(y, pred, sources, n_perm=99)
        init = classification_report(y, rng.integers(0, 4, y.size), sources, n_perm=99)
        rep.update(n_val=120, init=init, init_top1=init["top1"], gain_over_init=rep["top1"] - init["top1"],
                   gain_ci95=[0.1, 0.4], nmi={"value": 0.2} if name == "cluster" else None)
        (feats / f"probe_{name}.json").write_text(json.dumps(rep))
        return 0

    return run


def test_ssl_study_shows_init_rows_cluster_probe_and_holm(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(study_mod, "execute", _fake_ssl_runner(calls))
    cfg = load_config(None, ["data=toy4"])
    cells = [c for c in study_mod.build_cells("ssl", study_mod.StudyContext(cfg.data.sources, tiny=True))
             if c.kind == "ssl"]
    monkeypatch.setattr(study_mod, "build_cells", lambda name, ctx, only=None: cells)
    rows = study_mod.run_study("ssl", tmp_path, cfg, ["data=toy4"], tiny=True, echo=lambda s: None, baselines=False)
    assert {Path(c[1]).name for c in calls} >= {"pretrain.py", "linear.py", "knn.py", "cluster.py"}
    probes = sorted({r["probe"] for r in rows})
    assert probes == ["cluster", "cluster (init)", "knn", "knn (init)", "linear", "linear (init)"]
    report = write_report("ssl", rows, tmp_path, "python tools/study.py --study ssl --tiny").read_text()
    assert "gain over init" in report and "verdict" in report and "p (Holm)" in report and "NMI 0.200" in report
    with open(tmp_path / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    raw = [float(r["p_value"]) for r in csv_rows]
    from dsbias.stats import holm
    assert [float(r["p_holm"]) for r in csv_rows] == pytest.approx(holm(raw))
    assert all(r["verdict"] == ("separable" if float(r["p_holm"]) < 0.05 else "not shown") for r in csv_rows)
