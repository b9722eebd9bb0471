"""Tests."""

from __future__ import annotations

import numpy as np
import pytest

from dsbias.stats import bootstrap_ci, classification_report, confusion_matrix, format_table, wilson_ci


def test_wilson_known_values():
    lo, hi = wilson_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson_ci(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.73
    assert wilson_ci(0, 0) == (0.0, 1.0)


def test_bootstrap_close_to_wilson():
    x = np.r_[np.ones(300), np.zeros(200)]
    lo, hi = bootstrap_ci(x, n_boot=2000)
    wl, wh = wilson_ci(300, 500)
    assert abs(lo - wl) < 0.01 and abs(hi - wh) < 0.01


def test_report_contents():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 0, 2])
    r = classification_report(y, p, ["a", "b", "c"], train_labels=np.array([1, 1, 0]))
    assert r["top1"] == pytest.approx(4 / 6)
    assert r["per_source"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert r["confusion"] == confusion_matrix(y, p, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["chance"] == pytest.approx(1 / 3) and r["majority"] == pytest.approx(2 / 6)
    text = format_table(r, "probe")
    assert "top-1 66.7%" in text and "chance 33.3%" in text


def test_absent_class_has_no_recall():
    r = classification_report(np.array([0, 0]), np.array([0, 1]), ["a", "b"])
    assert r["per_source"]["b"] is None
    assert "-" in format_table(r)
