"""``tools/bench_scale.py``: the path to Liu & He's scale (1M images per source, 3-6 sources), rehearsed on this
machine where it can be and extrapolated where it cannot, each figure with its peak resident memory.

Stages (each optional):

- **kNN** on ``n x d`` memory-mapped synthetic features (float16 and float32 on disk), ``q`` queries, k=20: the
  probe's own :func:`~dsbias.probes.knn.run_knn` (engine chosen by its in-run probe), GFLOP/s against the GEMM
  rate measured in the same run.
- **Linear**: the streamed (bounded-memory) L-BFGS fit over the same file: seconds per loss + gradient pass, and
  the full protocol's time extrapolated from the number of passes it takes on a subsample held in RAM.
- **Cluster**: the clustering probe's own :func:`~dsbias.probes.cluster.run_cluster` (k = S, its default
  subsample of whole groups beyond 200k rows, faiss spherical k-means, group-permutation null).
- **Extraction**: ``ssl/extract.py``'s loop (:func:`dsbias.bench.extract.measure`) on ~500-px JPEGs, with the
  loader alone beside it: the per-core decode rate bounds what a GPU node's CPUs can feed its GPUs.
- **Manifest build** over a generated webdataset of small JPEGs: items/s with 1 and 2 processes (each decoding
  its share, merged into the single-process manifest), and the extrapolation to 3M images on a 64-core node.

Peak RSS, all of it and the process's own, is sampled from ``/proc/self/statm`` during each stage
(:class:`PeakRSS`): ``ru_maxrss`` only grows, so it cannot tell the stages of one process apart.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsbias.bench.probes import matmul_rate
from dsbias.features.store import load_features, write_meta, write_split_blocks
from dsbias.probes.cluster import run_cluster
from dsbias.probes.knn import run_knn
from dsbias.probes.linear import fit_linear, probe_once
from dsbias.probes.rows import Standardizer, StreamedRows

GIB = 1 << 30
BLOCK = 65536  # rows generated and written per block


class PeakRSS:
    """Context manager: the highest resident set size (bytes) of this process while it is open, sampled.

    ``peak`` counts every resident page, the pages of memory-mapped feature files included (page cache that the
    kernel reads ahead and can drop at will); ``peak_private`` counts only the process's own memory
    (resident minus file-backed and shared pages, ``statm``'s second field minus its third): what a probe
    needs the RAM for.
    """

    def __init__(self, every_s: float = 0.02) -> None:
        self.every_s, self.peak, self.peak_private, self._stop = every_s, 0, 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        with open("/proc/self/statm") as f:
            resident, shared = (int(v) * self._page for v in f.read().split()[1:3])
        self.peak, self.peak_private = max(self.peak, resident), max(self.peak_private, resident - shared)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRSS:
        self.peak = self.peak_private = 0
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def gib(self) -> dict[str, float]:
        """``peak_rss_gib`` and ``peak_private_gib`` for a result row."""
        return {"peak_rss_gib": self.peak / GIB, "peak_private_gib": self.peak_private / GIB}


def synthetic_features(root: Path, n: int, q: int, dim: int, dtype: str, sources: int = 3, seed: int = 0) -> Path:
    """A features dir of ``n`` train and ``q`` val rows: Gaussian blobs per source, written block by block."""
    mu = np.random.default_rng(1234).normal(size=(sources, dim)).astype(np.float32) * 0.12
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    start = 0
    for split, rows in (("train", n), ("val", q)):
        labels = rng.integers(0, sources, rows)

        def blocks(labels: np.ndarray = labels):
            for lo in range(0, len(labels), BLOCK):
                y = labels[lo:lo + BLOCK]
                yield rng.standard_normal((len(y), dim), dtype=np.float32) + mu[y]

        write_split_blocks(root, split, (rows, dim), blocks(), labels, np.arange(start, start + rows), dtype)
        start += rows
    write_meta(root, {"dim": dim, "dtype": dtype, "sources": [f"s{i}" for i in range(sources)],
                      "backbone": "synthetic"})
    return root


def bench_knn(root: Path, k: int = 20) -> dict[str, Any]:
    """kNN of val against train with the probe's defaults; time, GFLOP/s, engine, peak RSS."""
    fs = load_features(root)
    with PeakRSS() as rss:
        t = time.perf_counter()
        res, _ = run_knn(fs, ks=[k], progress=False)
        sec = time.perf_counter() - t
    flops = 2 * len(fs.train) * len(fs.val) * fs.dim
    engine = next((n.split(" (")[0].split(": ")[1] for n in res["notes"] if n.startswith("CPU search engine")),
                  "torch")
    return {"sec": sec, "gflops": flops / sec / 1e9, **rss.gib(), "engine": engine,
            "top1": res["top1"], "notes": res["notes"]}


def bench_linear(root: Path, passes: int = 3, subsample: int = 50_000) -> dict[str, Any]:
    """Streamed linear fit over the file: seconds per loss + gradient pass and peak RSS; the number of passes of
    the full protocol (6 decays on a held-out slice + refit) counted on a ``subsample`` held in RAM."""
    fs = load_features(root)
    cpu = torch.device("cpu")
    y = torch.as_tensor(np.array(fs.train.labels))
    with PeakRSS() as rss:
        t = time.perf_counter()
        std = Standardizer.fit(fs.train.features)
        fit_std = time.perf_counter() - t
        rows = StreamedRows(fs.train.features, std, cpu)
        t = time.perf_counter()
        _, evals = fit_linear(rows, y, len(fs.sources), 1e-4, max_iter=passes)
        per_pass = (time.perf_counter() - t) / evals
    n_sub = min(subsample, len(fs.train))
    x_sub = std.apply(fs.train.features[:n_sub], cpu)
    _, run = probe_once(x_sub, y[:n_sub], x_sub[:10], len(fs.sources), seed=0)
    total_evals = sum(r["evals"] for r in run["selection"]) + max(1, round(np.mean([r["evals"] for r in
                                                                                    run["selection"]])))
    return {"standardizer_sec": fit_std, "sec_per_pass": per_pass, "passes_timed": evals,
            **rss.gib(), "protocol_passes": total_evals,
            "protocol_sec": fit_std + total_evals * per_pass, "matrix_gib": len(fs.train) * fs.dim * 4 / GIB}


def bench_cluster(root: Path) -> dict[str, Any]:
    """The clustering probe with its defaults over the file (train and val rows); time, rows clustered, peak RSS."""
    fs = load_features(root)
    with PeakRSS() as rss:
        t = time.perf_counter()
        res, _ = run_cluster(fs)
        sec = time.perf_counter() - t
    return {"sec": sec, "rows_clustered": sum(res["cluster_sizes"]), "rows": len(fs.train) + len(fs.val),
            **rss.gib(), "purity": res["purity"]["value"], "nmi": res["nmi"]["value"]}


def bench_extract(images: int, backbone: str, folder: Path) -> dict[str, Any]:
    """Extraction images/s on this machine (one timed pass after a warm-up, 2 loader workers) and the loader's
    alone; peak RSS."""
    from dsbias.bench.extract import measure

    with PeakRSS() as rss:
        r = measure(images, batch=32, workers=2, repeat=1, backbone=backbone, init="random", folder=str(folder))
    return {"img_per_s": r["extract"].rate(r["n"]), "loader_img_per_s": r["loader"].rate(r["n"]),
            "bare_img_per_s": r["bare"].rate(r["n"]), "n": r["n"], "sec": r["extract"].median,
            "image_size": r["image_size"], **rss.gib()}


def make_shards(root: Path, n: int, per_shard: int = 10_000, size: int = 16, seed: int = 0) -> str:
    """``n`` small JPEGs (``size`` px, distinct) in webdataset tar shards of two sources; the data.sources YAML."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    per_shard = min(per_shard, max(1, n // 4))  # at least two shards per source
    for name in "ab":
        (root / name).mkdir(parents=True, exist_ok=True)
    for s, lo in enumerate(range(0, n, per_shard)):
        name = "ab"[s % 2]
        with tarfile.open(root / name / f"{s:05d}.tar", "w") as tar:
            for i in range(lo, min(lo + per_shard, n)):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
                info = tarfile.TarInfo(f"{i:08d}.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    return "[" + ", ".join(f"{{name: {s}, kind: webdataset, path: '{root}/{s}/*.tar'}}" for s in "ab") + "]"


def _cpu_seconds() -> float:
    t = os.times()  # this process and its reaped children (the decode processes, once joined)
    return t.user + t.system + t.children_user + t.children_system


def bench_manifest(sources: str, n: int, processes: int) -> dict[str, Any]:
    """Build the manifest of all ``n`` images (90/10 split per source) with ``processes`` processes, each
    decoding its share (:func:`~dsbias.data.manifest.decode_share`, 2 threads each), merged by the first."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from dsbias.config import load_config
    from dsbias.data.manifest import build_manifest, decode_share

    per = n // 2
    data = load_config(None, [f"data.sources={sources}", f"data.per_source={{train: {per - per // 10}, "
                                                         f"val: {per // 10}}}", "data.num_workers=1",
                              "data.dedup=ignore"]).data
    with PeakRSS() as rss:
        t, cpu0 = time.perf_counter(), _cpu_seconds()
        known = None
        if processes > 1:
            with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as ex:
                shares = list(ex.map(decode_share, [data] * processes, range(processes), [processes] * processes))
            known = {k: v for share in shares for k, v in share.items()}
        manifest = build_manifest(data, known)
        sec, cpu = time.perf_counter() - t, _cpu_seconds() - cpu0
    return {"sec": sec, "items_per_s": len(manifest) / sec, "cpu_ms_per_item": 1000 * cpu / len(manifest),
            **rss.gib(), "rows": len(manifest)}


def gemm(dim: int, n: int, q: int) -> float:
    """This CPU's float32 GEMM rate (GFLOP/s) on the kNN's shape, measured now."""
    return matmul_rate(dim, min(n, 200_000), min(q, 4096))
