"""Exact inner-product top-k on CPU at the machine's matmul rate: faiss or a torch matmul + ``topk``, whichever is
faster here, chosen by a quick measured probe.

Why a choice at all: the ``faiss-cpu`` wheel carries its own OpenBLAS (0.3.15 in faiss 1.15.1) and its own OpenMP
runtime. That OpenBLAS picks its GEMM kernels from a CPU table of 2021: on a CPU it does not know it falls back to
older kernels (on an AMD EPYC of family 26 with AVX-512 it runs its *Haswell* AVX2 kernels; on an unknown CPU it
can be worse), while torch's BLAS (MKL / oneDNN) uses AVX-512. faiss's own SIMD dispatch
(``faiss.get_compile_options()``: ``AVX512``) only covers its distance and top-k code, not the GEMM that
dominates an exact flat search. Its OpenMP pool is also separate from torch's, so two pools of spinning threads
can share the cores. The result is a faiss search anywhere from ~the GEMM rate to a fraction of it depending on
the machine, which no fixed rule predicts; a probe on the real shape (``d``, ``k``) costs well under a second.

Both engines return the same neighbours: the same cosine similarities up to float rounding (a different BLAS
sums in a different order), so only exact near-ties (|Δsim| ~ 1e-7) can swap order.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from dsbias.features.store import row_blocks
from dsbias.probes.faiss_build import faiss

log = logging.getLogger(__name__)

ENGINES = ("auto", "faiss", "torch")
BANK_BLOCK = 32768  # bank rows per torch matmul: [query_chunk, BANK_BLOCK] float32 scores (128 MiB at 1024 queries)
TORCH_QUERY_CHUNK = 1024  # queries per torch matmul; 4096 would make the score block 512 MiB for no faster GEMM
# Probe shape: the real query chunk (faiss's BLAS calls are only fast on large query blocks: a probe of 1024
# queries made faiss look 2x slower than it was on the full search), 16k rows: ~100 GFLOP at d=768.
PROBE_ROWS, PROBE_QUERIES = 16384, 4096
PROBE_MIN_GFLOP = 200.0  # below this, the probe (~6 passes of its shape) costs more than it can save: faiss
# Bank rows per BLAS block in faiss's CPU flat search (faiss default 1024). Each block ends in an OpenMP barrier;
# on a shared CPU 4096 was ~25% faster (fewer barriers), on an idle one the same (tools/bench_probes.py).
DB_BLOCK = 4096


def normalized(x: np.ndarray) -> np.ndarray:
    """L2-normalised float32 C-contiguous copy of ``x [N, D]`` (any float dtype; never modifies a memmap)."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


def torch_bank(bank: np.ndarray, chunk: int = 65536) -> torch.Tensor:
    """The L2-normalised float32 bank ``[N, D]`` as one tensor, filled block by block from a (memmapped) array
    (read with :func:`~dsbias.features.store.row_blocks`: file reads, so the map's pages do not add to RSS)."""
    out = torch.empty(bank.shape, dtype=torch.float32)
    for start, block in row_blocks(bank, chunk, native=True):
        rows = torch.from_numpy(block).float()  # float16 on disk: torch converts it ~5x faster than numpy
        out[start:start + len(rows)] = torch.nn.functional.normalize(rows, dim=1)
    return out


def torch_search(bank: torch.Tensor, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product of normalised ``queries [Q, D]`` against ``bank [N, D]`` (normalised).

    Each query chunk is multiplied by the bank in blocks of :data:`BANK_BLOCK` rows; the running top-k is merged
    with each block's top-k, so memory stays ``[chunk, BANK_BLOCK]`` whatever ``N``.

    Returns:
        ``sims [Q, k]`` float32, descending, and ``idx [Q, k]`` int64 bank rows.
    """
    n = bank.shape[0]
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    for qs in range(0, queries.shape[0], TORCH_QUERY_CHUNK):
        q = torch.from_numpy(normalized(queries[qs:qs + TORCH_QUERY_CHUNK]))  # [c, D]
        best_v = best_i = None
        for bs in range(0, n, BANK_BLOCK):
            scores = q @ bank[bs:bs + BANK_BLOCK].T  # [c, B]
            v, i = scores.topk(min(k, scores.shape[1]), dim=1)
            i += bs
            if best_v is not None:  # merge: the top-k of (top-k so far ∪ this block's top-k)
                v, j = torch.cat([best_v, v], 1).topk(min(k, best_v.shape[1] + v.shape[1]), dim=1)
                i = torch.cat([best_i, i], 1).gather(1, j)
            best_v, best_i = v, i
        sims[qs:qs + q.shape[0]], idx[qs:qs + q.shape[0]] = best_v.numpy(), best_i.numpy()
    return sims, idx


def faiss_blas() -> str:
    """Which GEMM kernels faiss's bundled OpenBLAS runs here, e.g. ``OpenBLAS 0.3.15 ... core Haswell``; ``""``
    when faiss links another BLAS (a conda build with MKL) or the library cannot be found."""
    libs = glob.glob(os.path.join(os.path.dirname(faiss.__file__), "..", "faiss_cpu.libs", "libopenblas*.so*"))
    if not libs:
        return ""
    try:
        lib = ctypes.CDLL(libs[0])
        lib.openblas_get_corename.restype = lib.openblas_get_config.restype = ctypes.c_char_p
        config = lib.openblas_get_config().decode().split(" MAX_THREADS")[0]
        return f"{config}, core {lib.openblas_get_corename().decode()}"
    except (OSError, AttributeError):
        return ""


def _best_seconds(fns: dict[str, Callable[[], object]], rounds: int = 2) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` interleaved rounds (after one untimed warm-up each)."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():  # interleaved: a change of load hits both engines alike
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=16)
def probe_engines(dim: int, k: int, threads: int) -> tuple[str, dict[str, float]]:
    """Measure both engines on a ``PROBE_QUERIES x PROBE_ROWS`` search at this ``dim`` and ``k``.

    Cached per process for ``(dim, k, threads)``: the machine does not change between two probes of one run.

    Returns:
        The faster engine's name and each engine's GFLOP/s.
    """
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((PROBE_ROWS, dim), dtype=np.float32)
    queries = rng.standard_normal((PROBE_QUERIES, dim), dtype=np.float32)
    index = faiss.IndexFlatIP(dim)
    index.add(normalized(bank))
    tb, qn = torch_bank(bank), normalized(queries)
    default_block = faiss.cvar.distance_compute_blas_database_bs
    faiss.cvar.distance_compute_blas_database_bs = DB_BLOCK  # as knn_search runs it; restored below
    try:
        secs = _best_seconds({"faiss": lambda: index.search(qn, k), "torch": lambda: torch_search(tb, qn, k)})
    finally:
        faiss.cvar.distance_compute_blas_database_bs = default_block
    rates = {name: 2 * PROBE_ROWS * PROBE_QUERIES * dim / s / 1e9 for name, s in secs.items()}
    return min(secs, key=secs.get), rates


def choose_engine(requested: str, n: int, q: int, dim: int, k: int, notes: list[str]) -> str:
    """The CPU engine for a search of ``q`` queries in ``n`` rows: ``requested`` unless ``auto``; ``auto``
    measures both (:func:`probe_engines`) when the search is big enough to repay it. Explains itself in ``notes``.
    """
    if requested != "auto":
        return requested
    if 2 * n * q * dim / 1e9 < PROBE_MIN_GFLOP:
        return "faiss"
    engine, rates = probe_engines(dim, k, faiss.omp_get_max_threads())
    blas = faiss_blas()
    notes.append(f"CPU search engine: {engine} (probe at d={dim}, k={k}: "
                 + ", ".join(f"{name} {r:.0f} GFLOP/s" for name, r in sorted(rates.items()))
                 + (f"; faiss GEMM: {blas}" if blas else "") + ")")
    return engine
