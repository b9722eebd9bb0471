"""Intervals: Wilson's known values; the cluster bootstrap is wider than Wilson on clustered predictions and
covers the true accuracy about 95% of the time; without groups the report keeps the Wilson interval."""

from __future__ import annotations

import numpy as np
import pytest

from dsbias.stats import bootstrap_totals, classification_report, wilson_ci
from dsbias.stats.intervals import top1_of


def clustered(rng, mean=0.6, sources=3, groups=20, size=10, spread=2.0):
    """Val predictions whose correctness is shared within a group: p_g ~ Beta with the given mean."""
    y = np.repeat(np.arange(sources), groups * size)
    g = np.repeat(np.arange(sources * groups), size)
    p_group = rng.beta(mean * spread, (1 - mean) * spread, sources * groups)
    correct = rng.random(y.size) < p_group[g]
    pred = np.where(correct, y, (y + 1 + rng.integers(0, sources - 1, y.size)) % sources)
    return y, pred, g


def test_wilson_known_values():
    lo, hi = wilson_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson_ci(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.73
    assert wilson_ci(0, 0) == (0.0, 1.0)


def test_without_groups_the_interval_is_wilson():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    pred = np.where(rng.random(300) < 0.5, y, rng.integers(0, 3, 300))
    r = classification_report(y, pred, ["a", "b", "c"])
    assert r["ci95"] == r["ci95_iid"] == list(wilson_ci(int((pred == y).sum()), 300))
    assert r["design_effect"] == 1.0 and r["n_groups"] == 300
    # Distinct group ids are the same as no groups.
    assert classification_report(y, pred, ["a", "b", "c"], groups=np.arange(300) + 7)["ci95"] == r["ci95"]


def test_cluster_bootstrap_is_wider_than_wilson_on_clustered_predictions():
    y, pred, g = clustered(np.random.default_rng(1))
    r = classification_report(y, pred, ["a", "b", "c"], groups=g, n_perm=99)
    width, width_iid = r["ci95"][1] - r["ci95"][0], r["ci95_iid"][1] - r["ci95_iid"][0]
    assert width > 1.5 * width_iid and r["design_effect"] > 2  # ICC 1/3, 10 per group: about 4 expected
    assert r["n_groups"] == 60 and r["n"] == 600


def test_cluster_bootstrap_covers_the_true_accuracy():
    rng = np.random.default_rng(2)
    covered = covered_iid = 0
    reps = 300
    for i in range(reps):
        y, pred, g = clustered(rng, mean=0.6)
        b = bootstrap_totals(y, g, np.stack([np.ones(y.size), pred == y], 1), 3, n_boot=500, seed=i)
        lo, hi = b.interval(float(np.mean(pred == y)), top1_of(b.boot))
        covered += lo <= 0.6 <= hi
        k = int((pred == y).sum())
        lo, hi = wilson_ci(k, y.size)
        covered_iid += lo <= 0.6 <= hi
    assert 0.90 <= covered / reps <= 0.99, covered / reps
    assert covered_iid / reps < 0.75  # the i.i.d. interval is far too narrow here: why groups matter


def test_one_group_per_source_gives_no_interval():
    y = np.repeat(np.arange(2), 10)
    r = classification_report(y, y, ["a", "b"], groups=y, n_perm=99)
    assert r["ci95"] == [0.0, 1.0] and any("one val group" in n for n in r["notes"])
