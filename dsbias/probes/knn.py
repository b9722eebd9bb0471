"""Weighted kNN probe on cached features (DINO protocol), searched exactly with faiss (CPU or GPU) or, on CPU,
with a torch matmul + top-k when that is faster on the machine at hand (:mod:`.search`).

Protocol (DINO ``eval_knn.py``): L2-normalise train and val features, cosine similarity = inner product, the
k nearest train rows vote for their source with weight ``exp(sim / T)``; k=20, T=0.07 by default. Several k are
served by one search at the largest k (the top-k of a top-K list is its first k columns).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from dsbias.errors import UserError
from dsbias.features.store import FeatureSet, read_rows
from dsbias.log import progress as progress_bar
from dsbias.probes.faiss_build import faiss, require_faiss
from dsbias.probes.labels import check_labels
from dsbias.probes.result import group_notes
from dsbias.probes.search import DB_BLOCK, choose_engine, normalized, torch_bank, torch_search
from dsbias.stats import classification_report

log = logging.getLogger(__name__)

GPU_MAX_K = 2048  # faiss GPU k-selection limit (GPU_MAX_SELECTION_K)
ADD_CHUNK = 65536  # base rows normalised and added per step: bounds the float32 copy of a memmapped bank


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return faiss is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def create_index(bank: np.ndarray, backend: str, progress: bool = False,
                 gpu_devices: list[int] | None = None) -> faiss.Index:
    """An exact inner-product index over the L2-normalised rows of ``bank [N, D]``.

    On GPU the bank is sharded: one flat index per device, each filled with its contiguous block of rows, joined
    by an ``IndexShards`` with successive ids (shard ``s``'s local id ``i`` is bank row ``offset_s + i``).
    The shards are filled *before* they are joined: an ``IndexShards`` with successive ids accepts a single
    ``add()``, and the bank is added in chunks (what ``index_cpu_to_all_gpus(shard=True)`` on an empty index
    would have needed).

    Args:
        bank: Train features, any float dtype, possibly memory-mapped; normalised chunk by chunk.
        backend: ``"cpu"`` or ``"gpu"`` (sharded over all visible GPUs unless ``gpu_devices`` says otherwise).
        progress: Show a progress bar while adding.
        gpu_devices: GPU ids, one shard each (a device may repeat: ``[0, 0]`` is two shards on GPU 0).
    """
    require_faiss()
    d = bank.shape[1]
    if backend == "gpu":
        devices = list(range(faiss.get_num_gpus())) if gpu_devices is None else gpu_devices
        shards = [gpu_flat_index(d, dev) for dev in devices]
    else:
        shards = [faiss.IndexFlatIP(d)]
    return fill_shards(bank, shards, progress)


def gpu_flat_index(d: int, device: int) -> faiss.Index:
    """An empty flat inner-product index on GPU ``device`` that keeps its GPU resources alive."""
    res = faiss.StandardGpuResources()
    conf = faiss.GpuIndexFlatConfig()
    conf.device = device
    index = faiss.GpuIndexFlatIP(res, d, conf)
    index.referenced_objects = [res]  # faiss's own idiom: the resources must outlive the index
    return index


def fill_shards(bank: np.ndarray, shards: list[faiss.Index], progress: bool = False) -> faiss.Index:
    """Add the rows of ``bank [N, D]`` to ``shards`` (contiguous blocks, chunk by chunk) and join them.

    Args:
        bank: Raw features; each chunk of ``ADD_CHUNK`` rows is normalised into a float32 copy and added.
        shards: Empty flat indexes of dimension ``D``; one shard is returned as it is.
        progress: Show a progress bar while adding.

    Returns:
        The index over all rows; search ids are bank rows.
    """
    n = bank.shape[0]
    bounds = [s * n // len(shards) for s in range(len(shards) + 1)]
    chunks = [(s, a, min(a + ADD_CHUNK, bounds[s + 1])) for s in range(len(shards))
              for a in range(bounds[s], bounds[s + 1], ADD_CHUNK)]
    for s, a, b in progress_bar(chunks, desc="kNN bank", disable=not progress, leave=False):
        block = read_rows(bank, a, b)  # a float32 copy read from the file (not through the map)
        faiss.normalize_L2(block)
        shards[s].add(block)
    if len(shards) == 1:
        index = shards[0]
    else:
        index = faiss.IndexShards(bank.shape[1], True, True)  # threaded, successive ids
        for shard in shards:
            index.add_shard(shard)
        index.referenced_objects = list(shards)  # add_shard does not own them
    assert index.ntotal == n, f"index holds {index.ntotal} rows, bank has {n}"
    return index


def knn_search(
    bank: np.ndarray, queries: np.ndarray, k: int, backend: str = "cpu", query_chunk: int = 4096,
    progress: bool = False, engine: str = "faiss",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k of every query row among the bank rows.

    Args:
        bank: ``[N, D]`` train features (raw; normalised here).
        queries: ``[Q, D]`` query features (raw; normalised here).
        k: Neighbours per query, ``1 <= k <= N``.
        backend: ``"cpu"`` or ``"gpu"``.
        query_chunk: Queries per search call; bounds the float32 copy and the ``[chunk, k]`` results.
        progress: Show progress bars.
        engine: On CPU, ``faiss`` or ``torch`` (:func:`dsbias.probes.search.torch_search`); same neighbours.

    Returns:
        ``sims [Q, k]`` float32 (descending) and ``idx [Q, k]`` int64 bank rows.
    """
    n, q = bank.shape[0], queries.shape[0]
    if not 1 <= k <= n:
        raise UserError(f"k={k} must be in 1..{n} (bank size)")
    if backend == "gpu" and k > GPU_MAX_K:
        raise UserError(f"k={k} exceeds the faiss GPU limit {GPU_MAX_K}")
    if backend == "cpu" and engine == "torch":
        return torch_search(torch_bank(bank), queries, k)
    index = create_index(bank, backend, progress)
    sims = np.empty((q, k), dtype=np.float32)
    idx = np.empty((q, k), dtype=np.int64)
    default_block = faiss.cvar.distance_compute_blas_database_bs
    faiss.cvar.distance_compute_blas_database_bs = DB_BLOCK  # a faiss global: restored below
    try:
        # Fixed-size chunks (not Q // 100 as in DINO, which breaks below 100 queries).
        for start in progress_bar(range(0, q, query_chunk), desc="kNN search", disable=not progress, leave=False):
            stop = min(start + query_chunk, q)
            sims[start:stop], idx[start:stop] = index.search(normalized(queries[start:stop]), k)
    finally:
        faiss.cvar.distance_compute_blas_database_bs = default_block
    assert (idx >= 0).all(), "faiss returned -1 neighbours (fewer than k rows in the index?)"
    return sims, idx


def knn_vote(sims: np.ndarray, neighbour_labels: np.ndarray, num_classes: int, temperature: float) -> np.ndarray:
    """Class scores ``[Q, C]`` from ``exp(sim / T)``-weighted votes of the neighbours.

    Args:
        sims: ``[Q, k]`` cosine similarities.
        neighbour_labels: ``[Q, k]`` source ids of the neighbours.
        num_classes: Number of sources, passed explicitly (a class absent from val must keep its column).
        temperature: Softmax-like temperature T.
    """
    weights = torch.from_numpy(sims).double().div(temperature).exp()  # [Q, k]; float64: exp(1/0.07) is ~1.6e6
    scores = torch.zeros(sims.shape[0], num_classes, dtype=torch.float64)
    scores.scatter_add_(1, torch.from_numpy(neighbour_labels), weights)  # [Q, C]
    return scores.numpy()


def resolve_backend(requested: str, max_k: int, notes: list[str]) -> str:
    """Pick ``cpu``/``gpu`` for ``requested`` in ``{auto, cpu, gpu}``; explains any choice in ``notes``."""
    if requested == "gpu" and not gpu_available():
        raise UserError("--device gpu: this faiss has no GPU support or sees no GPU (faiss-gpu build needed)")
    if requested == "cpu" or (requested == "auto" and not gpu_available()):
        return "cpu"
    if max_k > GPU_MAX_K:
        if requested == "gpu":
            raise UserError(f"k={max_k} exceeds the faiss GPU limit {GPU_MAX_K}; use --device cpu")
        notes.append(f"k={max_k} exceeds the faiss GPU limit {GPU_MAX_K}: searched on CPU")
        return "cpu"
    return "gpu"


def run_knn(
    fs: FeatureSet, ks: list[int] | tuple[int, ...] = (20,), temperature: float = 0.07, device: str = "auto",
    query_chunk: int = 4096, threads: int | None = None, progress: bool = True, engine: str = "auto",
) -> tuple[dict[str, Any], np.ndarray]:
    """kNN probe of val against train: one search at the largest k, a report per k.

    Args:
        fs: Features from ``load_features``.
        ks: Neighbour counts; the first is the primary result. Each is clipped to the bank size (with a note).
        temperature: Vote temperature T.
        device: ``auto`` (GPU when faiss-gpu sees one), ``cpu`` or ``gpu``.
        query_chunk: Queries per faiss search call.
        threads: faiss OpenMP threads (``None``: faiss default).
        progress: Progress bars.
        engine: CPU search engine, ``auto`` (the faster of faiss and torch here, measured), ``faiss`` or ``torch``.

    Returns:
        A JSON-ready dict (the primary k's ``classification_report`` fields plus ``per_k``, ``k``, ``backend``,
        ``notes``, ``n_train``, ``n_val``, ``warnings``) and the primary k's val predictions ``[M]``.

    Raises:
        FeatureError: Fewer than two sources have rows in a split (:func:`~dsbias.probes.labels.check_labels`).
    """
    require_faiss()
    warnings = check_labels(fs)
    n_train, n_val, num_classes = len(fs.train), len(fs.val), len(fs.sources)
    notes: list[str] = group_notes(fs)
    ks_eff = []
    for k in ks:
        if k < 1:
            raise UserError(f"k={k}: must be >= 1")
        if k > n_train:
            notes.append(f"k={k} > bank size {n_train}: clipped to {n_train}")
        ks_eff.append(min(k, n_train))
    backend = resolve_backend(device, max(ks_eff), notes)
    if threads:
        faiss.omp_set_num_threads(threads)
    if backend == "cpu":
        engine = choose_engine(engine, n_train, n_val, fs.dim, max(ks_eff), notes)
    log.info("kNN: %d train x %d val, d=%d, k=%s, T=%g, %s on %s", n_train, n_val, fs.dim, ks_eff, temperature,
             engine if backend == "cpu" else "faiss", backend)
    sims, idx = knn_search(fs.train.features, fs.val.features, max(ks_eff), backend, query_chunk, progress, engine)
    neighbour_labels = fs.train.labels[idx]  # [Q, K]
    per_k, preds = {}, {}
    for k_req, k in zip(ks, ks_eff):
        pred = np.concatenate([  # voted in row chunks: the float64 weights stay small for millions of queries
            knn_vote(sims[i:i + ADD_CHUNK, :k], neighbour_labels[i:i + ADD_CHUNK, :k], num_classes, temperature)
            .argmax(1) for i in range(0, n_val, ADD_CHUNK)])
        rep = classification_report(fs.val.labels, pred, fs.sources, fs.train.labels, groups=fs.val.groups)
        rep["k"] = k
        per_k[str(k_req)] = rep
        preds[str(k_req)] = pred
    for note in notes:
        log.warning("kNN: %s", note)
    primary = per_k[str(ks[0])]
    return ({**primary, "per_k": per_k, "backend": backend, "notes": [*notes, *primary["notes"]],
             "n_train": n_train, "n_val": n_val, "warnings": warnings}, preds[str(ks[0])])
