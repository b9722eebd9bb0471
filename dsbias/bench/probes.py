"""Speed and agreement of the probes against scikit-learn and a torch reference, on synthetic features.

Not a test: ``python tools/bench_probes.py`` prints a markdown table. The float32 matmul rate is measured in the
same run, so "fraction of peak" compares like with like on whatever machine (and load) the run had. Every time is
the median of repeats (:mod:`dsbias.bench.timer`), with the min-max spread.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import torch

from dsbias.bench.timer import time_it
from dsbias.probes.knn import knn_search, knn_vote
from dsbias.probes.linear import Standardizer, evaluate, fit_linear, probe_once, sklearn_linear
from dsbias.probes.search import choose_engine


def synthetic(n: int, dim: int, classes: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, dim]`` float32 Gaussian blobs whose means are ``sep`` apart per axis: separable with overlap."""
    rng = np.random.default_rng(seed)
    mu = np.random.default_rng(1234).normal(size=(classes, dim)) * sep  # same means for every split
    y = rng.integers(0, classes, n)
    return (rng.standard_normal((n, dim), dtype=np.float32) + mu[y].astype(np.float32)), y


def matmul_rate(dim: int, n: int, nq: int, block: int = 16384) -> float:
    """This CPU's float32 GEMM rate (GFLOP/s) on the kNN's own work: ``[4096, d] @ [d, block]`` tiles covering
    ``nq x n``, median of 3. Same FLOPs and duration as the search, so it sees the same machine load."""
    a, b, out = torch.randn(4096, dim), torch.randn(dim, block), torch.empty(4096, block)
    tiles = -(-nq // 4096) * -(-n // block)
    timing, _ = time_it(lambda: [torch.mm(a, b, out=out) for _ in range(tiles)], repeat=3)
    return timing.rate(2 * 4096 * block * dim * tiles) / 1e9


def torch_topk(bank: np.ndarray, queries: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Reference kNN: normalise, ``q @ b^T`` per query chunk, ``topk``; returns ``idx [Q, k]``."""
    b = torch.nn.functional.normalize(torch.from_numpy(bank), dim=1).T.contiguous()  # [D, N]
    q = torch.nn.functional.normalize(torch.from_numpy(queries), dim=1)
    return torch.cat([(q[i:i + chunk] @ b).topk(k, dim=1).indices for i in range(0, q.shape[0], chunk)]).numpy()


def bench_knn(n: int, nq: int, dim: int, k: int, query_chunk: int, sklearn: bool) -> list[dict[str, Any]]:
    xb, yb = synthetic(n, dim, 3, 0.12, seed=0)
    xq, yq = synthetic(nq, dim, 3, 0.12, seed=1)
    flops = 2 * nq * n * dim
    rows = [{"what": f"float32 GEMM rate: torch.mm [4096,{dim}]x[{dim},16384] tiles, same FLOPs (peak)",
             "sec": None, "gflops": matmul_rate(dim, n, nq)}]

    def faiss_knn():
        sims, idx = knn_search(xb, xq, k, "cpu", query_chunk)
        return idx, knn_vote(sims, yb[idx], 3, 0.07).argmax(1)

    t, (idx, pred) = time_it(faiss_knn, repeat=3)
    rows.append({"what": f"dsbias kNN, faiss IndexFlatIP ({faiss.omp_get_max_threads()} threads)", "sec": t.median,
                 "spread": t.spread(), "gflops": t.rate(flops) / 1e9, "top1": float(np.mean(pred == yq))})
    t, (sims_t, idx_t) = time_it(lambda: knn_search(xb, xq, k, "cpu", engine="torch"), repeat=3)
    rows.append({"what": "dsbias kNN, torch engine (blocked matmul + topk, merged)", "sec": t.median,
                 "spread": t.spread(), "gflops": t.rate(flops) / 1e9, "agree": float(np.mean(idx_t == idx))})
    notes: list[str] = []
    engine = choose_engine("auto", n, nq, dim, k, notes)
    rows.append({"what": f"default (--engine auto) picks: {engine}; {notes[0] if notes else 'no probe'}"})
    t, ref = time_it(lambda: torch_topk(xb, xq, k), repeat=3)
    rows.append({"what": "torch matmul + topk reference", "sec": t.median, "spread": t.spread(),
                 "gflops": t.rate(flops) / 1e9, "agree": float(np.mean(ref == idx))})
    peak = rows[0]["gflops"]
    for r in rows[1:]:
        if r.get("gflops"):
            r["of_gemm"] = f"{r['gflops'] / peak:.0%}"
    if sklearn:
        from sklearn.neighbors import KNeighborsClassifier

        for metric, xb_, xq_ in (("cosine", xb, xq), ("euclidean on L2-normalised", *map(_unit, (xb, xq)))):
            clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=metric.split()[0])
            t, sk_pred = time_it(lambda c=clf, b=xb_, q=xq_: c.fit(b, yb).predict(q), repeat=1)
            rows.append({"what": f"sklearn KNeighborsClassifier brute, {metric} (1 run)", "sec": t.median,
                         "gflops": t.rate(flops) / 1e9, "top1": float(np.mean(sk_pred == yq))})
    return rows


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_linear(n: int, dim: int) -> list[dict[str, Any]]:
    x_np, y_np = synthetic(n, dim, 3, 0.06, seed=2)
    xv_np, yv = synthetic(n // 10, dim, 3, 0.06, seed=3)
    std = Standardizer.fit(x_np)
    x, xv, y = std.apply(x_np, torch.device("cpu")), std.apply(xv_np, torch.device("cpu")), torch.as_tensor(y_np)
    fit_linear(x[:2000], y[:2000], 3, 1e-3)  # warm up torch's kernels and thread pool (a one-off cost)
    rows = []
    for name, skl in (("dsbias linear probe, torch L-BFGS", False), ("same protocol, sklearn LogisticRegression",
                                                                     True)):
        t, (pred, run) = time_it(lambda s=skl: probe_once(x, y, xv, 3, seed=0, sklearn=s), repeat=3)
        rows.append({"what": f"{name}: wd chosen on held-out 15% of train + refit", "sec": t.median,
                     "spread": t.spread(), "top1": float(np.mean(pred == yv)), "wd": run["weight_decay"]})
    wd = 1.0 / n  # sklearn's default C=1 is this decay
    t, (head, _) = time_it(lambda: fit_linear(x, y, 3, wd), repeat=3)
    rows.append({"what": "torch L-BFGS, one fit at sklearn's default C=1", "sec": t.median, "spread": t.spread(),
                 "top1": float(np.mean(evaluate(head, xv)[0] == yv)), "wd": wd})
    t, head = time_it(lambda: sklearn_linear(x, y, 3, wd), repeat=3)
    rows.append({"what": "sklearn LogisticRegression(C=1), one fit", "sec": t.median, "spread": t.spread(),
                 "top1": float(np.mean(evaluate(head, xv)[0] == yv)), "wd": wd})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["what", "sec", "spread", "gflops", "of_gemm", "top1", "agree", "wd"]
    cols = [c for c in cols if any(r.get(c) is not None for r in rows)]

    def cell(v: Any) -> str:
        return "" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    return head + "\n" + "\n".join("| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows)
