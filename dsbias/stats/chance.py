"""Tests against chance, and Holm's correction for a table of them.

Under the null (the sources cannot be told apart) a classifier's prediction for a val image is independent of
the image's source, whatever the classifier learnt from train. Two exact tests follow:

- **Binomial** (every image its own group, equal val counts per source): the number of correct val images is
  at most Binomial(n, 1/S) in the sense of stochastic order (it is exactly that for i.i.d. labels, and a
  fixed balanced design is only less variable), so the one-sided exact binomial p-value is valid.
- **Permutation** (groups, or unequal val counts): the source labels of whole val *groups* are exchangeable
  under the null, so shuffling them among groups and recomputing the statistic gives its null distribution,
  whatever the dependence inside a group. The Monte-Carlo p-value ``(1 + #{null >= observed}) / (1 + B)`` is
  exact (never below ``1 / (1 + B)``).

A table of p-values (a study) is corrected with Holm's step-down method, which controls the family-wise error
rate for any dependence between rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest

from dsbias.errors import UserError

PERM_CHUNK = 4_000_000  # elements of a [chunk, G] array per step: bounds memory for many groups


class GroupsError(UserError, ValueError):
    """Group ids that are not nested in sources."""


def binomial_p(correct: int, n: int, chance: float) -> float:
    """One-sided exact binomial p-value of ``correct`` of ``n`` against ``chance`` (alternative: greater)."""
    if n <= 0:
        return 1.0
    return float(binomtest(int(correct), int(n), chance, alternative="greater").pvalue)


def group_table(labels: np.ndarray, preds: np.ndarray, groups: np.ndarray | None,
                num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group source label ``[G]`` and prediction counts ``[G, S]`` (``None``: one group per image).

    Raises:
        ValueError: A group holds images of two sources (groups must be nested in sources).
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if groups is None:
        return labels, np.eye(num_classes, dtype=np.int64)[preds]
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    g = int(codes.max()) + 1
    group_label = np.full(g, -1, dtype=np.int64)
    group_label[codes] = labels
    if not np.array_equal(group_label[codes], labels):
        raise GroupsError("a val group holds images of several sources: group ids must be nested in sources "
                          "(check {split}_groups.npy)")
    counts = np.zeros((g, num_classes), dtype=np.int64)
    np.add.at(counts, (codes, preds), 1)
    return group_label, counts


def _statistic(group_label: np.ndarray, counts: np.ndarray, balanced: bool) -> np.ndarray:
    """Top-1 or balanced accuracy for each row of ``group_label [B, G]`` given prediction ``counts [G, S]``."""
    b, g = group_label.shape
    s = counts.shape[1]
    hits = counts[np.arange(g)[None, :], group_label]  # [B, G] correct images per group under these labels
    if not balanced:
        return hits.sum(1) / counts.sum()
    sizes = np.broadcast_to(counts.sum(1), (b, g))
    flat = (np.arange(b)[:, None] * s + group_label).ravel()
    per_hit = np.bincount(flat, weights=hits.ravel(), minlength=b * s).reshape(b, s)
    per_n = np.bincount(flat, weights=sizes.ravel(), minlength=b * s).reshape(b, s)
    present = per_n > 0
    return (np.where(present, per_hit / np.where(present, per_n, 1), 0).sum(1)) / present.sum(1)


def permutation_p(
    labels: np.ndarray, preds: np.ndarray, groups: np.ndarray | None, num_classes: int, balanced: bool = False,
    n_perm: int = 4999, seed: int = 0,
) -> tuple[float, np.ndarray]:
    """One-sided permutation p-value of top-1 (or balanced accuracy), shuffling source labels among groups.

    Args:
        labels: ``[N]`` true source ids.
        preds: ``[N]`` predicted source ids.
        groups: ``[N]`` group ids (nested in sources), or ``None`` (every image its own group).
        num_classes: S.
        balanced: Test the mean per-source recall instead of top-1.
        n_perm: Permutations B.
        seed: Seeds the permutations.

    Returns:
        The p-value and the null distribution ``[B]``.
    """
    group_label, counts = group_table(labels, preds, groups, num_classes) if groups is not None else (None, None)
    if groups is None:  # one group per image: the shuffled confusion matrix is multivariate hypergeometric
        return _image_permutation_p(np.asarray(labels), np.asarray(preds), num_classes, balanced, n_perm, seed)
    observed = float(_statistic(group_label[None, :], counts, balanced)[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, PERM_CHUNK // max(group_label.size, 1))
    null = []
    for start in range(0, n_perm, chunk):
        m = min(chunk, n_perm - start)
        perm = rng.permuted(np.broadcast_to(group_label, (m, group_label.size)), axis=1)  # [m, G]
        null.append(_statistic(perm, counts, balanced))
    null_arr = np.concatenate(null) if null else np.zeros(0)
    # A tolerance: float sums of the same hits in another order must count as ties, not as smaller.
    p = (1 + int(np.sum(null_arr >= observed - 1e-12))) / (1 + n_perm)
    return p, null_arr


def _image_permutation_p(labels: np.ndarray, preds: np.ndarray, num_classes: int, balanced: bool, n_perm: int,
                         seed: int) -> tuple[float, np.ndarray]:
    """:func:`permutation_p` with every image its own group, in O(S^2) per permutation: shuffling the labels of
    images keeps both margins of the confusion matrix, and such a table is drawn row by row from multivariate
    hypergeometric distributions (exactly the shuffle's distribution, without touching the images)."""
    n_true = np.bincount(labels, minlength=num_classes)
    n_pred = np.bincount(preds, minlength=num_classes)
    present = n_true > 0

    def stat(hits: np.ndarray) -> float:
        if balanced:
            return float((hits[present] / n_true[present]).mean())
        return float(hits.sum() / max(n_true.sum(), 1))

    observed = stat(np.bincount(labels[labels == preds], minlength=num_classes))
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for b in range(n_perm):
        remaining = n_pred.copy()
        hits = np.zeros(num_classes, dtype=np.int64)
        for s in np.flatnonzero(present):
            row = rng.multivariate_hypergeometric(remaining, int(n_true[s]))
            hits[s] = row[s]
            remaining -= row
        null[b] = stat(hits)
    p = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + n_perm)
    return p, null


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (``None`` entries are left out and stay ``None``).

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), then made non-decreasing; a row is
    significant at level alpha when its adjusted p-value is below alpha.
    """
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p_values[j])):  # type: ignore[arg-type,return-value]
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))  # type: ignore[arg-type]
        out[i] = running
    return out
