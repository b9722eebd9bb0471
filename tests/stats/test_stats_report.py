"""The report: contents, keys every number carries, and the printed table."""

from __future__ import annotations

import numpy as np
import pytest

from dsbias.stats import classification_report, confusion_matrix, format_table

KEYS = ("top1", "ci95", "ci95_iid", "design_effect", "balanced_top1", "balanced_ci95", "primary", "p_value", "test",
        "verdict", "alpha", "chance", "majority", "per_source", "confusion", "sources", "n", "n_groups", "notes")


def test_report_contents():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 0, 2])
    r = classification_report(y, p, ["a", "b", "c"], train_labels=np.array([1, 1, 0]))
    assert set(KEYS) <= set(r)
    assert r["top1"] == pytest.approx(4 / 6)
    assert r["per_source"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert r["confusion"] == confusion_matrix(y, p, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["chance"] == pytest.approx(1 / 3) and r["majority"] == pytest.approx(2 / 6)
    text = format_table(r, "probe")
    assert "top-1 66.7%" in text and "chance 33.3%" in text and "verdict: not shown" in text


def test_absent_class_has_no_recall():
    r = classification_report(np.array([0, 0]), np.array([0, 1]), ["a", "b"], n_perm=99)
    assert r["per_source"]["b"] is None
    assert "-" in format_table(r)


def test_table_prints_the_design_effect_and_groups():
    y = np.repeat(np.arange(2), 100)
    g = np.repeat(np.arange(20), 10)
    pred = np.where(np.repeat(np.arange(20) % 3 > 0, 10), y, 1 - y)
    r = classification_report(y, pred, ["a", "b"], groups=g, n_perm=199)
    text = format_table(r)
    assert "20 groups" in text and "design effect" in text and r["design_effect"] > 1.5
