"""Clustering probe: do the features fall into clusters that follow the sources, with no label used at all?

The unsupervised separability the critics of dataset classification use: faiss k-means (k = S by default;
spherical, on L2-normalised features of every row, train and val) and, against the sources, normalised mutual
information (NMI), the adjusted Rand index (ARI) and purity (the share of images whose cluster's most common
source is their own). None of them is 0 at chance for finite data, so each comes with its null: the same score
with the source labels permuted (among groups, when the features have them, so images that belong together move
together). Purity is the row's headline (``top1``, with ``chance`` = its null mean) because it reads like an
accuracy; its permutation p-value gives the verdict.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dsbias.errors import UserError
from dsbias.features.store import FeatureSet
from dsbias.probes.faiss_build import faiss, require_faiss
from dsbias.probes.knn import normalized
from dsbias.probes.labels import check_labels
from dsbias.probes.result import group_notes
from dsbias.stats import classification_report, verdict
from dsbias.stats.chance import group_table

log = logging.getLogger(__name__)

TRAIN_POINTS = 100_000  # k-means is fit on at most this many rows (then every row is assigned)
MAX_ROWS = 200_000  # rows clustered and scored by default: a seeded subsample of whole groups beyond it
N_PERM = 1999
CHUNK = 4_000_000


def kmeans(x: np.ndarray, k: int, seed: int = 0, niter: int = 25) -> np.ndarray:
    """Spherical faiss k-means on the L2-normalised rows of ``x [N, D]``; returns cluster ids ``[N]``."""
    xn = normalized(x)
    km = faiss.Kmeans(xn.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=max(256, math.ceil(TRAIN_POINTS / k)))
    km.train(xn)
    return km.index.search(xn, 1)[1][:, 0].astype(np.int64)


def scores(cont: np.ndarray) -> dict[str, np.ndarray]:
    """NMI (arithmetic normalisation, scikit-learn's default), ARI and purity of contingency tables
    ``[..., S, K]`` (rows: sources, columns: clusters)."""
    cont = np.asarray(cont, dtype=np.float64)
    n = cont.sum((-2, -1))
    a, b = cont.sum(-1), cont.sum(-2)  # [..., S], [..., K]

    def entropy(c: np.ndarray) -> np.ndarray:
        p = c / n[..., None]
        return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(-1)

    p = cont / n[..., None, None]
    outer = (a / n[..., None])[..., :, None] * (b / n[..., None])[..., None, :]
    mi = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / np.where(p > 0, outer, 1)), 0).sum((-2, -1))
    h = (entropy(a) + entropy(b)) / 2
    nmi = np.where(h > 0, mi / np.where(h > 0, h, 1), 1.0)

    def pairs(c: np.ndarray) -> np.ndarray:
        return c * (c - 1) / 2

    index, sa, sb = pairs(cont).sum((-2, -1)), pairs(a).sum(-1), pairs(b).sum(-1)
    expected = sa * sb / np.maximum(pairs(n), 1)
    top = (sa + sb) / 2
    ari = np.where(top != expected, (index - expected) / np.where(top != expected, top - expected, 1), 1.0)
    return {"nmi": nmi, "ari": ari, "purity": cont.max(-2).sum(-1) / n}


def permuted_tables(labels: np.ndarray, clusters: np.ndarray, groups: np.ndarray | None, num_classes: int, k: int,
                    n_perm: int, seed: int) -> np.ndarray:
    """Contingency tables ``[B, S, K]`` with the source labels permuted among groups (or images)."""
    group_label, counts = group_table(labels, clusters, groups, k)  # [G], [G, K]
    rng = np.random.default_rng(seed)
    g = group_label.size
    out = np.zeros((n_perm, num_classes, k))
    chunk = max(1, CHUNK // max(g, 1))
    for start in range(0, n_perm, chunk):
        m = min(chunk, n_perm - start)
        perm = rng.permuted(np.broadcast_to(group_label, (m, g)), axis=1)  # [m, G]
        flat = (np.arange(m)[:, None] * num_classes + perm).ravel()
        for j in range(k):
            w = np.broadcast_to(counts[:, j], (m, g)).ravel()
            out[start:start + m, :, j] = np.bincount(flat, weights=w, minlength=m * num_classes).reshape(m, -1)
    return out


def subsample(n: int, groups: np.ndarray | None, max_rows: int, seed: int) -> np.ndarray | None:
    """Rows to keep (sorted) when ``n > max_rows``: whole groups in a seeded order until ``max_rows``; else None."""
    if n <= max_rows:
        return None
    codes = np.arange(n) if groups is None else np.unique(groups, return_inverse=True)[1].reshape(-1)
    order = np.random.default_rng(seed).permutation(int(codes.max()) + 1)
    sizes = np.bincount(codes)[order]
    chosen = order[: max(1, int(np.searchsorted(np.cumsum(sizes), max_rows, side="right")))]
    return np.flatnonzero(np.isin(codes, chosen))


def rows_of(fs: FeatureSet, split: str, max_rows: int = MAX_ROWS,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Features ``[N, D]``, labels and groups of ``split`` (``all`` = train then val), at most ``max_rows`` rows
    (:func:`subsample`): clustering holds them in memory."""
    parts = [fs.train, fs.val] if split == "all" else [getattr(fs, split)]
    y = np.concatenate([p.labels for p in parts])
    groups = None if parts[0].groups is None else np.concatenate([p.groups for p in parts])
    keep = subsample(y.size, groups, max_rows, seed)
    if keep is None:
        return np.concatenate([np.asarray(p.features) for p in parts]), y, groups
    offsets = np.cumsum([0] + [len(p) for p in parts])
    x = np.concatenate([np.asarray(p.features[keep[(keep >= lo) & (keep < hi)] - lo])
                        for p, lo, hi in zip(parts, offsets[:-1], offsets[1:])])
    return x, y[keep], None if groups is None else groups[keep]


def cluster_report(y: np.ndarray, clusters: np.ndarray, sources: list[str], k: int, groups: np.ndarray | None,
                   n_perm: int = N_PERM, seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """Scores of one clustering against the sources, with their label-permuted null and p-values.

    Returns:
        The report (``classification_report`` fields for the majority-source mapping, whose ``top1`` is the
        purity, with ``chance``/``p_value``/``verdict`` from the permutation null) and that mapping's
        predictions ``[N]``.
    """
    s = len(sources)
    cont = np.zeros((s, k))
    np.add.at(cont, (y, clusters), 1)
    majority = cont.argmax(0)  # [K] each cluster's most common source
    pred = majority[clusters]
    rep = classification_report(y, pred, sources, groups=groups, seed=seed, n_perm=0)
    null = scores(permuted_tables(y, clusters, groups, s, k, n_perm, seed))
    observed = {"nmi": normalized_mutual_info_score(y, clusters), "ari": adjusted_rand_score(y, clusters),
                "purity": rep["top1"]}
    unit = "groups" if groups is not None else "images"
    for name, value in observed.items():
        nl = null[name]
        rep[name] = {"value": float(value), "null_mean": float(nl.mean()), "null_q95": float(np.quantile(nl, 0.95)),
                     "p_value": (1 + int(np.sum(nl >= value - 1e-12))) / (1 + n_perm)}
    rep["notes"] = [n for n in rep["notes"] if "primary metric" not in n]  # purity is the headline here
    rep.update(primary="top1", chance=rep["purity"]["null_mean"], p_value=rep["purity"]["p_value"],
               test=f"purity under {n_perm} permutations of the source labels among {unit}",
               verdict=verdict(rep["purity"]["p_value"], rep["alpha"]), k=k,
               cluster_sizes=np.bincount(clusters, minlength=k).tolist())
    return rep, pred


def run_cluster(fs: FeatureSet, ks: list[int] | None = None, split: str = "all", seed: int = 0, niter: int = 25,
                n_perm: int = N_PERM, threads: int | None = None,
                max_rows: int = MAX_ROWS) -> tuple[dict[str, Any], np.ndarray]:
    """Cluster the features with k-means for each k (default: S) and score the clusters against the sources.

    Args:
        fs: Features from ``load_features``.
        ks: Cluster counts; the first is primary.
        split: Rows to cluster: ``all`` (train and val), ``train`` or ``val``.
        seed: k-means seed (and the permutations').
        niter: k-means iterations.
        n_perm: Label permutations for the null.
        threads: faiss OpenMP threads.
        max_rows: Rows clustered at most (whole groups, seeded, beyond it).

    Returns:
        A JSON-ready dict (the primary k's report plus ``per_k``, ``split``, ``notes``, ``n_train``, ``n_val``,
        ``backend``, ``warnings``) and the primary k's majority-source predictions (for the random-init control).

    Raises:
        FeatureError: Fewer than two sources have rows in a split clustered (:func:`.labels.check_labels`).
    """
    ks = list(ks or [len(fs.sources)])
    if split not in ("all", "train", "val"):
        raise UserError(f"--split {split}: use all, train or val")
    require_faiss()
    warnings = check_labels(fs, splits=("train", "val") if split == "all" else (split,), supervised=False)
    x, y, groups = rows_of(fs, split, max_rows, seed)
    total = sum(len(p) for p in ([fs.train, fs.val] if split == "all" else [getattr(fs, split)]))
    if any(k < 2 or k > x.shape[0] for k in ks):
        raise UserError(f"--k {ks}: each k must be in 2..{x.shape[0]} (rows clustered)")
    if threads:
        faiss.omp_set_num_threads(threads)
    per_k, preds = {}, {}
    for k in ks:
        log.info("cluster: k-means k=%d on %d x %d (%s rows)", k, x.shape[0], x.shape[1], split)
        rep, pred = cluster_report(y, kmeans(x, k, seed, niter), fs.sources, k, groups, n_perm, seed)
        per_k[str(k)], preds[str(k)] = rep, pred
    primary = per_k[str(ks[0])]
    notes = [*group_notes(fs), *primary["notes"]]
    if y.size < total:
        notes.append(f"clustered a seeded subsample of {y.size} of {total} rows (whole groups; --max-rows)")
    return ({**primary, "per_k": per_k, "split": split, "notes": notes, "n_train": len(fs.train),
             "n_val": len(fs.val), "backend": "faiss k-means (cpu)", "warnings": warnings}, preds[str(ks[0])])
