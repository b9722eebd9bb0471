"""Identifiable images and leakage: near-duplicate pairs in feature space, and the images a model is surest of.

Near duplicates (:func:`near_duplicates`): features of train and val are L2-normalised and each image's ``k``
nearest neighbours are searched exactly with faiss (``IndexFlatIP`` = cosine). Pairs at cosine >= ``threshold``
are counted by kind:

- ``train-val``: the same (or nearly the same) picture in train and val, which inflates val accuracy;
- ``cross-source``: one picture in two sources (a same-split pair of different sources); its label is ambiguous;
- ``within-source``: repeats inside one source and split.

Only the ``k`` nearest neighbours of each image are looked at, so with more than ``k`` near copies of one image
the counts are lower bounds; ``saturated`` counts the images whose ``k``-th neighbour was still above the
threshold (raise ``k`` when it is not 0). Features of an untrained network sit close together: pick the
threshold on a trained backbone's features (0.95 is a starting point).

Confidence extremes (:func:`confidence_extremes`): given per-image source probabilities ``[N, S]`` from a
classifier or probe, the val images each source is recognised most and least confidently by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from dsbias.features.store import FeatureSet
from dsbias.probes.faiss_build import require_faiss

KINDS = ("train-val", "cross-source", "within-source")


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32).copy()
    require_faiss().normalize_L2(x)
    return x


def near_duplicates(
    features: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray,
    threshold: float = 0.95,
    k: int = 10,
) -> tuple[list[tuple[int, int, float]], int]:
    """All pairs ``(i, j, cosine)`` with ``i < j`` among each row's ``k`` nearest neighbours at cosine >= threshold.

    Args:
        features: ``[N, D]`` features (any scale; normalised here).
        labels: ``[N]`` source ids.
        splits: ``[N]`` split ids (0 = train, 1 = val).
        threshold: Cosine similarity at or above which two images count as near duplicates.
        k: Neighbours searched per image (excluding itself).

    Returns:
        The pairs sorted by decreasing cosine (each pair once), and the number of rows whose ``k``-th
        neighbour is still >= threshold (their counts are lower bounds).
    """
    n = features.shape[0]
    if not (labels.shape == splits.shape == (n,)):
        raise ValueError(f"near_duplicates: {n} feature rows, labels {labels.shape}, splits {splits.shape}")
    if n < 2:
        return [], 0
    x = _normalised(features)
    index = require_faiss().IndexFlatIP(x.shape[1])
    index.add(x)
    kk = min(k + 1, n)
    sims, nbrs = index.search(x, kk)  # [N, kk] each; the row itself is usually first
    pairs: dict[tuple[int, int], float] = {}
    saturated = 0
    for i in range(n):
        others = [(int(j), float(s)) for j, s in zip(nbrs[i], sims[i]) if j != i and j >= 0][:k]
        if len(others) == k and others[-1][1] >= threshold and k < n - 1:
            saturated += 1
        for j, s in others:
            if s >= threshold:
                key = (min(i, j), max(i, j))
                pairs[key] = max(pairs.get(key, -1.0), s)
    ordered = sorted(((i, j, s) for (i, j), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
    return ordered, saturated


def pair_kind(li: int, lj: int, si: int, sj: int) -> str:
    """``train-val`` (different splits), else ``cross-source`` or ``within-source``."""
    if si != sj:
        return "train-val"
    return "cross-source" if li != lj else "within-source"


def duplicate_report(
    fs: FeatureSet, rows: Sequence[dict[str, Any]] | None = None, threshold: float = 0.95, k: int = 10, top: int = 20
) -> dict[str, Any]:
    """Near-duplicate audit of a feature set (train and val together).

    Args:
        fs: Loaded features (:func:`dsbias.features.store.load_features`).
        rows: Manifest rows (indexed by manifest ``index``) to name the images; None: indices only.
        threshold: Cosine threshold.
        k: Neighbours per image.
        top: How many of the most similar pairs to list.

    Returns:
        ``threshold, k, n, counts{kind}, by_source{"a|b": n}, saturated, val_with_train_duplicate`` (manifest
        indices of val images with a train near-duplicate: drop them for a leak-free val) and ``top_pairs``.
    """
    x = np.concatenate([np.asarray(fs.train.features), np.asarray(fs.val.features)])  # [N, D]
    labels = np.concatenate([fs.train.labels, fs.val.labels])
    splits = np.concatenate([np.zeros(len(fs.train), np.int64), np.ones(len(fs.val), np.int64)])
    index = np.concatenate([fs.train.index, fs.val.index])
    pairs, saturated = near_duplicates(x, labels, splits, threshold, k)
    sources = fs.sources
    counts = Counter({kind: 0 for kind in KINDS})
    by_source: Counter[str] = Counter()
    val_dups: set[int] = set()
    for i, j, _ in pairs:
        kind = pair_kind(labels[i], labels[j], splits[i], splits[j])
        counts[kind] += 1
        a, b = sorted((sources[labels[i]], sources[labels[j]]))
        by_source[f"{kind}: {a}|{b}"] += 1
        if kind == "train-val":
            val_dups.add(int(index[i] if splits[i] == 1 else index[j]))

    def describe(p: int) -> dict[str, Any]:
        d = {"index": int(index[p]), "split": "val" if splits[p] else "train", "source": sources[labels[p]]}
        if rows is not None:
            d["item"] = rows[int(index[p])]["item"]
        return d

    return {
        "threshold": threshold, "k": k, "n": int(x.shape[0]), "pairs": len(pairs), "counts": dict(counts),
        "by_source": dict(sorted(by_source.items())), "saturated": saturated,
        "val_with_train_duplicate": sorted(val_dups),
        "top_pairs": [{"cosine": round(s, 6), "kind": pair_kind(labels[i], labels[j], splits[i], splits[j]),
                       "a": describe(i), "b": describe(j)} for i, j, s in pairs[:top]],
    }


def confidence_extremes(
    probs: np.ndarray, labels: np.ndarray, rows: Sequence[dict[str, Any]], sources: Sequence[str], n: int = 8
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per source, the val images recognised most and least confidently (by the probability of the true source).

    Args:
        probs: ``[N, S]`` source probabilities of the val images (rows sum to 1).
        labels: ``[N]`` true source ids.
        rows: ``[N]`` manifest rows of those images (same order).
        sources: Source names.
        n: Images per list.

    Returns:
        ``{source: {"most": [...], "least": [...]}}``; each entry holds ``index``, ``item``, ``p_true``,
        ``predicted`` (source name) and ``p_predicted``; ``most`` by decreasing ``p_true``, ``least`` increasing.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or len(rows) != labels.shape[0]:
        raise ValueError(f"confidence_extremes: probs {probs.shape}, labels {labels.shape}, {len(rows)} rows")
    if probs.shape[1] != len(sources):
        raise ValueError(f"confidence_extremes: {probs.shape[1]} probability columns for {len(sources)} sources")
    p_true = probs[np.arange(len(labels)), labels]
    pred = probs.argmax(1)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s, name in enumerate(sources):
        idx = np.flatnonzero(labels == s)
        order = idx[np.lexsort((idx, -p_true[idx]))]  # decreasing confidence, ties by position

        def entry(i: int) -> dict[str, Any]:
            return {"index": int(rows[i]["index"]), "item": rows[i]["item"], "p_true": float(p_true[i]),
                    "predicted": sources[int(pred[i])], "p_predicted": float(probs[i, pred[i]])}

        out[name] = {"most": [entry(i) for i in order[:n]], "least": [entry(i) for i in order[::-1][:n]]}
    return out
