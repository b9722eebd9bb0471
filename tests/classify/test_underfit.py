"""The underfit warning: it fires on a 1-step run (in metrics.json and the printed table) and not on a converged
one; it names what to raise."""

from __future__ import annotations

import json

from dsbias.classify.underfit import TAIL_DROP, tail_drop, underfit_check
from dsbias.config import load_config
from dsbias.pipelines.classify import classify

CONVERGED = [{"step": s, "loss": 0.05 + 1.0 / s} for s in range(1, 201)]  # flat for the last quarter
FALLING = [{"step": s, "loss": 1.1 - 0.004 * s} for s in range(1, 201)]


def test_underfit_check_rules():
    assert not underfit_check(1.0, 0.8, CONVERGED, 12800, "m")["likely"]
    assert not underfit_check(0.95, 0.93, CONVERGED, 12800, "m")["likely"]  # close to val but near 100%
    close = underfit_check(0.40, 0.37, CONVERGED, 12800, "convnext_atto_1_10")
    assert close["likely"] and "raise train.samples (now 12800)" in close["reasons"][0]
    assert "larger model" in close["reasons"][0] and "convnext_atto_1_10" in close["reasons"][0]
    falling = underfit_check(0.7, 0.5, FALLING, 12800, "m")
    assert falling["likely"] and "still falling" in falling["reasons"][0] and falling["tail_drop"] > 0.1
    assert not underfit_check(1.0, 0.34, FALLING, 12800, "m")["likely"]  # memorised (the pseudo control): fit
    assert tail_drop(CONVERGED) < TAIL_DROP and tail_drop(CONVERGED[:3]) is None
    assert underfit_check(None, 0.5, [], 10, "m") == {"likely": False, "reasons": [], "tail_drop": None}


def test_a_one_step_run_is_flagged(tmp_path, capsys):
    cfg = load_config(None, ["data=toy", "data.per_source={train: 24, val: 12}", "data.image_size=32",
                             "data.num_workers=0", "method=supervised", "model=convnext_atto_1_10_uniform",
                             "train.batch_size=24", "train.samples=24", "train.log_with=[]", f"out={tmp_path}"])
    m = classify(cfg)
    assert m["steps"] == 1 and m["underfit"]["likely"]
    assert any(w.startswith("likely underfit: train top-1") for w in m["warnings"])
    assert json.loads((tmp_path / "metrics.json").read_text())["underfit"]["likely"] is True
    assert "WARNING: likely underfit" in capsys.readouterr().out
