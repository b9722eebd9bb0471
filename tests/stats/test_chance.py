"""Tests against chance: the exact binomial equals scipy's, the group permutation p-value is uniform on null data
(and the i.i.d. one is not), Holm on a known example, balanced accuracy primary when val counts differ."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, kstest

from dsbias.stats import classification_report, holm, paired_gain, permutation_p


def test_binomial_p_value_is_scipys():
    y = np.repeat(np.arange(3), 50)
    pred = np.where(np.arange(150) % 5 < 2, y, (y + 1) % 3)
    r = classification_report(y, pred, ["a", "b", "c"])
    k = int((pred == y).sum())
    assert r["p_value"] == pytest.approx(binomtest(k, 150, 1 / 3, alternative="greater").pvalue, rel=1e-12)
    assert r["verdict"] == ("separable" if r["p_value"] < 0.05 else "not shown") and r["primary"] == "top1"


def test_group_permutation_p_is_uniform_on_null_data():
    rng = np.random.default_rng(0)
    ps, ps_iid = [], []
    for i in range(300):
        g = np.repeat(np.arange(60), rng.integers(3, 13, 60))  # 20 groups per source, of 3 to 12 images
        y = g % 3
        leaning = rng.dirichlet([0.3] * 3, 60)  # each group leans to a guess: independent of its source
        pred = (rng.random(g.size)[:, None] > np.cumsum(leaning[g], 1)).sum(1)
        ps.append(permutation_p(y, pred, g, 3, n_perm=199, seed=i)[0])
        ps_iid.append(permutation_p(y, pred, None, 3, n_perm=199, seed=i)[0])
    ps = np.array(ps)
    assert kstest(ps, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(ps <= 0.05) <= 0.09
    assert np.mean(np.array(ps_iid) <= 0.05) > 0.2  # ignoring the groups: false positives far above 5%


def test_holm_known_example():
    adj = holm([0.01, 0.04, 0.03, 0.005, None])
    assert adj[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and adj[4] is None
    assert holm([0.5]) == [0.5] and holm([]) == []


def test_balanced_is_primary_when_val_counts_differ():
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    pred = np.zeros(100, int)  # always the big source: 90% top-1, 50% balanced, nothing learnt
    r = classification_report(y, pred, ["a", "b"], n_perm=999)
    assert r["primary"] == "balanced_top1" and r["balanced_top1"] == pytest.approx(0.5)
    assert r["verdict"] == "not shown" and r["p_value"] > 0.5 and r["top1"] == pytest.approx(0.9)


def test_paired_gain_on_the_same_images():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 100)
    g = np.repeat(np.arange(60), 5)
    base = np.where(rng.random(300) < 0.4, y, (y + 1) % 3)
    same = paired_gain(y, base, base, 3, g)
    assert same["gain"] == 0 and same["ci95"] == [0.0, 0.0]
    better = np.where(rng.random(300) < 0.5, y, base)
    gain = paired_gain(y, better, base, 3, g)
    assert gain["gain"] == pytest.approx(np.mean(better == y) - np.mean(base == y))
    assert 0 < gain["ci95"][0] < gain["gain"] < gain["ci95"][1]
