"""Confidence intervals: Wilson's for independent images, a cluster bootstrap over groups of images.

Images of one group (the crops of one photo, one uploader's burst, the frames of one video) are not independent:
a classifier tends to be right or wrong on all of them at once, so an interval that counts images as
independent is too narrow. :func:`bootstrap_totals` resamples whole val *groups*, separately within each source
(the sources' val counts are fixed by the design, so they are strata), with Rao & Wu's rescaled bootstrap: in a
source with G groups it draws G - 1 groups with replacement and weights them by G / (G - 1), which makes the
bootstrap variance of a mean unbiased even for a handful of groups (the plain bootstrap under-covers there).
Statistics are functions of per-source weighted totals (images, correct predictions...), so a replicate is
one multinomial draw over the distinct group patterns of each source: a million ungrouped images cost as
little as a few. The percentile interval is then widened by Student's t quantile over the normal one, with
``groups - sources`` degrees of freedom (:meth:`Replicates.interval`), as survey statistics do for a design
with few clusters.

Reference: J. N. K. Rao & C. F. J. Wu, "Resampling inference with complex survey data", JASA 83 (1988).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

Z95 = 1.959963984540054  # two-sided 95% normal quantile
LEVEL = 0.95


def wilson_ci(correct: float, total: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); well-behaved at 0%, 100% and small n.

    Args:
        correct: Number of successes (may be fractional, e.g. an effective count).
        total: Number of trials (may be an effective sample size).
        z: Normal quantile (1.96 for 95%).

    Returns:
        ``(low, high)`` in [0, 1]; ``(0, 1)`` when ``total <= 0``.
    """
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile_ci(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates ``[B]``."""
    lo, hi = np.quantile(replicates, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def union(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """The smallest interval containing both."""
    return min(a[0], b[0]), max(a[1], b[1])


def dense_groups(strata: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Group codes ``[N]`` in ``0..G-1``, one group per ``(stratum, group)`` pair; ``None``: one per image.

    A group id that occurs under two sources is two groups (groups are resampled within a source).
    """
    n = strata.shape[0]
    if groups is None:
        return np.arange(n, dtype=np.int64)
    pairs = np.stack([np.asarray(strata, dtype=np.int64), np.asarray(groups, dtype=np.int64)], 1)  # [N, 2]
    return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def is_ungrouped(groups: np.ndarray | None) -> bool:
    """True when every image is its own group (no groups given, or all group ids distinct)."""
    return groups is None or np.unique(groups).size == np.asarray(groups).size


@dataclass
class Replicates:
    """Per-source totals of a statistic's ingredients, observed and bootstrapped.

    Attributes:
        observed: ``[S, D]`` totals per source (e.g. images, correct predictions).
        boot: ``[B, S, D]`` the same totals in each bootstrap replicate.
        groups: ``[S]`` number of val groups per source.
    """

    observed: np.ndarray
    boot: np.ndarray
    groups: np.ndarray

    @property
    def estimable(self) -> bool:
        """Every source with val images has >= 2 groups: the between-group variance can be estimated."""
        present = self.groups > 0
        return bool((self.groups[present] >= 2).all())

    def short_sources(self) -> list[int]:
        """Sources with exactly one val group."""
        return [int(s) for s in np.flatnonzero(self.groups == 1)]

    @property
    def df(self) -> int:
        """Degrees of freedom of the design: groups minus sources (with val images)."""
        return int(self.groups.sum() - (self.groups > 0).sum())

    def interval(self, estimate: float, replicates: np.ndarray, lo: float = 0.0,
                 hi: float = 1.0) -> tuple[float, float]:
        """Percentile interval of ``replicates [B]``, widened about ``estimate`` by ``t(df) / z`` and clipped to
        ``[lo, hi]`` (with 10 groups in each of 3 sources: 5% wider; with hundreds of groups: no change)."""
        low, high = percentile_ci(replicates)
        c = float(student_t.ppf(1 - (1 - LEVEL) / 2, self.df)) / Z95 if self.df >= 1 else 1.0
        return max(lo, estimate - (estimate - low) * c), min(hi, estimate + (high - estimate) * c)


def bootstrap_totals(
    strata: np.ndarray, groups: np.ndarray | None, values: np.ndarray, num_strata: int, n_boot: int = 2000,
    seed: int = 0,
) -> Replicates:
    """Rao-Wu cluster bootstrap of per-source totals of ``values``, resampling groups within each source.

    Args:
        strata: ``[N]`` source id of every val image (0..S-1).
        groups: ``[N]`` group id of every image, or ``None`` (every image its own group).
        values: ``[N, D]`` what to total per source (e.g. ``[1, correct]`` per image).
        num_strata: S.
        n_boot: Replicates B.
        seed: Seeds the draws (results are reproducible).

    Returns:
        Observed and bootstrapped totals. A source with one group keeps its observed totals in every replicate
        (its variance cannot be estimated: :attr:`Replicates.estimable` is False).
    """
    strata = np.asarray(strata, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(strata.shape[0], -1)
    codes = dense_groups(strata, groups)
    g = int(codes.max()) + 1 if codes.size else 0
    totals = np.zeros((g, values.shape[1]))
    np.add.at(totals, codes, values)  # [G, D]
    group_stratum = np.zeros(g, dtype=np.int64)
    group_stratum[codes] = strata
    rng = np.random.default_rng(seed)
    observed = np.zeros((num_strata, values.shape[1]))
    boot = np.zeros((n_boot, num_strata, values.shape[1]))
    counts = np.zeros(num_strata, dtype=np.int64)
    for h in range(num_strata):
        rows = totals[group_stratum == h]  # [G_h, D]
        counts[h] = rows.shape[0]
        observed[h] = rows.sum(0)
        if rows.shape[0] < 2:
            boot[:, h] = observed[h]
            continue
        # Groups with the same totals are interchangeable: draw over distinct patterns (ungrouped 0/1 data has 2).
        patterns, mult = np.unique(rows, axis=0, return_counts=True)
        draws = rng.multinomial(rows.shape[0] - 1, mult / mult.sum(), size=n_boot)  # [B, U]
        boot[:, h] = rows.shape[0] / (rows.shape[0] - 1) * (draws @ patterns)
    return Replicates(observed=observed, boot=boot, groups=counts)


def top1_of(totals: np.ndarray) -> np.ndarray:
    """Top-1 from per-source ``[..., S, 2]`` totals of ``(images, correct)``."""
    return totals[..., 1].sum(-1) / np.maximum(totals[..., 0].sum(-1), 1e-12)


def balanced_of(totals: np.ndarray) -> np.ndarray:
    """Mean per-source recall from ``[..., S, 2]`` totals, over the sources that have val images."""
    n, c = totals[..., 0], totals[..., 1]
    present = n > 0
    recall = np.where(present, c / np.where(present, n, 1.0), 0.0)
    return recall.sum(-1) / np.maximum(present.sum(-1), 1)
