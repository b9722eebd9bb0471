"""``tools/gpu_check.py``: what to run the first time dsbias meets a CUDA GPU, in one run of <= 10 minutes.

(a) ``pytest -m gpu``; (b) the sharded faiss index (two shards on one GPU, a 200k-row bank) against the CPU;
(c) each method ~30 steps at 224 px in fp32, bf16 and fp16 with a stop + resume, extraction and both probes
(:mod:`dsbias.bench.gpu_runs`); (d) ConvNeXt-T throughput at batch 128 / 224 px in fp32, TF32, bf16 and
bf16 + channels_last, the engine next to a bare timm loop, and the loader at 224 px with RandAugment; (e) 2
processes vs 1 on one GPU; (f) the linear probe's peak GPU memory on 3M x 768 features. Each check gives result
rows ``{check, what, ok, detail, seconds}``; :func:`table` prints them, the CLI writes them as JSON.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsbias.bench.gpu_runs import row
from dsbias.errors import UserError

CHECKS = ("a", "b", "c", "d", "e", "f")


def require_gpu() -> str:
    """The GPU's name, or the one-line reason this script cannot run here."""
    if not torch.cuda.is_available():
        raise UserError(f"tools/gpu_check.py needs a CUDA GPU: torch {torch.__version__} (CUDA build "
                        f"{torch.version.cuda or 'none'}) sees none; run it on the GPU machine")
    return torch.cuda.get_device_name()


def table(rows: list[dict[str, Any]], title: str = "") -> str:
    """A markdown table of result rows, with a last line counting the failures."""
    mark = {True: "ok", False: "FAIL", None: ""}
    lines = ([f"## {title}", ""] if title else []) + ["| check | what | result | detail | s |", "|---|---|---|---|---|"]
    for r in rows:
        detail = str(r["detail"]).replace("|", "/").replace("\n", " ")
        lines.append(f"| {r['check']} | {r['what']} | {mark[r['ok']]} | {detail} | {r['seconds']:.1f} |")
    failed = sum(r["ok"] is False for r in rows)
    lines.append(f"\n{len(rows)} rows, {failed} failed")
    return "\n".join(lines)


def run_checks(only: list[str], log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the checks named in ``only`` (letters of :data:`CHECKS`) in order; each failure is a row."""
    from dsbias.bench import gpu_runs

    funcs = {"a": check_pytest, "b": check_faiss, "c": gpu_runs.method_runs, "d": check_throughput,
             "e": gpu_runs.two_vs_one, "f": check_linear_memory}
    rows: list[dict[str, Any]] = []
    for letter in only:
        t0 = time.perf_counter()
        try:
            got = funcs[letter]()
        except Exception as e:  # noqa: BLE001 -- the table must come out whatever breaks
            got = [row(f"{letter} (crashed)", False, f"{type(e).__name__}: {str(e)[:300]}", time.perf_counter() - t0)]
        for r in got:
            log(f"[{r['check']}] {r['what']}: {'ok' if r['ok'] else r['ok']} ({r['detail']}) {r['seconds']}s")
        rows += got
    return rows


def check_pytest() -> list[dict[str, Any]]:
    """(a) The tests marked ``gpu``."""
    t0 = time.perf_counter()
    repo = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], cwd=repo,
                       capture_output=True, text=True, timeout=300)
    last = (p.stdout.strip().splitlines() or ["no output"])[-1]
    return [row("a pytest -m gpu", p.returncode == 0, last, time.perf_counter() - t0)]


def check_faiss(n: int = 200_000, d: int = 128, q: int = 2000, k: int = 20) -> list[dict[str, Any]]:
    """(b) A bank added in several chunks to two shards on GPU 0, searched, against the exact CPU search."""
    from dsbias.probes import knn

    t0 = time.perf_counter()
    if not knn.gpu_available():
        return [row("b faiss sharded GPU index", False, "this faiss has no GPU support or sees no GPU: "
                    "pip uninstall -y faiss-cpu && pip install -e '.[gpu]'", 0)]
    rng = np.random.default_rng(0)
    bank, queries = rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((q, d), dtype=np.float32)
    _, ref = knn.knn_search(bank, queries, k, "cpu")
    index = knn.create_index(bank, "gpu", gpu_devices=[0, 0])  # n > ADD_CHUNK: several adds per shard
    _, idx = index.search(knn.normalized(queries), k)
    agree = float(np.mean(idx == ref))
    return [row("b faiss 2 shards on one GPU, 200k bank", agree > 0.999 and index.ntotal == n,
                f"{index.ntotal} rows, top-{k} ids equal to CPU: {agree:.4f}", time.perf_counter() - t0)]


def _bare_timm(precision: str, channels_last: bool, tf32: bool, steps: int = 20, batch: int = 128) -> float:
    """Images/s of a plain timm ConvNeXt-T training loop on one random batch (no data, no engine)."""
    import timm

    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = tf32, True
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = timm.create_model("convnext_tiny", num_classes=3).cuda().to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, 224, 224, device="cuda").contiguous(memory_format=fmt)
    y = torch.randint(0, 3, (batch,), device="cuda")
    dtype = {"bf16": torch.bfloat16}.get(precision)
    for i in range(steps + 5):
        if i == 5:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


# (d): 30 steps of the paper's classifier at batch 128 on 224-px toy images with RandAugment.
THROUGHPUT_RUN = ["data=toy", "data.image_size=224", "data.per_source={train: 512, val: 64}", "model=convnext_tiny",
                  "method.supervised.augment=crop_randaug", "train.batch_size=128", "train.samples=3840",
                  "train.log_every=5", "train.log_with=[]", "classify.eval_every=0", "data.num_workers=12"]
LOADER_RUN = ["data=toy", "data.image_size=224", "data.per_source={train: 512, val: 16}", "model=convnext_atto",
              "method=supervised", "method.supervised.augment=crop_randaug"]
SETTINGS = {"fp32": ("no", False, False), "TF32": ("no", False, True), "bf16": ("bf16", False, True),
            "bf16 + channels_last": ("bf16", True, True)}


def check_throughput() -> list[dict[str, Any]]:
    """(d) ConvNeXt-T batch 128 at 224 px: the engine (toy data, RandAugment) vs a bare timm loop per setting,
    and the loader alone at 224 px with RandAugment."""
    import tempfile

    from dsbias.bench.gpu_runs import script  # the engine in a fresh process per setting

    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-d-") as tmp:
        for name, (prec, cl, tf32) in SETTINGS.items():
            t0 = time.perf_counter()
            bare = _bare_timm(prec, cl, tf32)
            out = Path(tmp) / name.replace(" ", "")
            code, tail, _ = script("probe/classify.py", "--out", str(out), *THROUGHPUT_RUN,
                                   f'train.mixed_precision="{prec}"', f"train.channels_last={str(cl).lower()}",
                                   f"train.tf32={str(tf32).lower()}", timeout=240)
            engine = _engine_rate(out) if code == 0 else float("nan")
            rows.append(row(f"d ConvNeXt-T {name}", None if code == 0 else False,
                            f"engine {engine:.0f} img/s, bare timm {bare:.0f} img/s, ratio {engine / bare:.2f}"
                            + ("" if code == 0 else f"; exit {code}: {tail}"), time.perf_counter() - t0))
    rows.append(_loader_rate())
    return rows


def _engine_rate(run: Path) -> float:
    import json

    rates = [json.loads(x).get("img_per_s") for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    rates = [r for r in rates if r]
    return float(np.median(rates[1:] or rates))  # the first interval holds the workers' start-up


def _loader_rate(workers: int = 12, batches: int = 40) -> dict[str, Any]:
    from dsbias.config import load_config
    from dsbias.data.dataset import MixedDataset
    from dsbias.data.loader import create_loader
    from dsbias.data.manifest import build_manifest
    from dsbias.methods.registry import create_method

    t0 = time.perf_counter()
    cfg = load_config(None, LOADER_RUN)
    manifest = build_manifest(cfg.data)
    ds = MixedDataset.from_config(manifest, "train", create_method(cfg, 3).create_train_transform(), cfg.data)
    loader = create_loader(ds, 128, shuffle=True, num_workers=workers)
    it = iter(loader)
    next(it)  # start-up
    t1 = time.perf_counter()
    n = sum(len(next(it)[1]) for _ in range(batches))
    rate = n / (time.perf_counter() - t1)
    return row(f"d loader 224 px RandAugment, {workers} workers", None, f"{rate:.0f} img/s (toy source)",
               time.perf_counter() - t0)


def _blobs(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, d]`` float32 Gaussian features of 3 overlapping classes, made in place (9 GB at 3M x 768, no
    float64 temporaries)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, d), dtype=np.float32)
    mu = (np.random.default_rng(1234).standard_normal((3, d)) * 0.06).astype(np.float32)
    for c in range(3):
        x[y == c] += mu[c]
    return x, y


def check_linear_memory(n: int = 3_000_000, d: int = 768) -> list[dict[str, Any]]:
    """(f) Peak GPU memory of the linear probe on ``n x d`` synthetic features (a small grid, 50 iterations)."""
    from dsbias.features.store import FeatureSet, FeatureSplit
    from dsbias.probes.linear import run_linear

    t0 = time.perf_counter()
    x, y = _blobs(n, d, seed=0)
    xv, yv = _blobs(n // 20, d, seed=1)
    fs = FeatureSet(root=Path("."), meta={"sources": ["a", "b", "c"], "dim": d},
                    train=FeatureSplit(x, y, np.arange(n)), val=FeatureSplit(xv, yv, np.arange(n // 20)))
    torch.cuda.reset_peak_memory_stats()
    res, _ = run_linear(fs, grid=(1e-4, 1e-2), max_iter=50, device="cuda")
    peak = torch.cuda.max_memory_allocated() / 2**30
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    return [row(f"f linear probe {n // 1000}k x {d}", peak < total, f"peak {peak:.1f} GiB of {total:.0f} GiB, "
                f"top-1 {res['top1']:.3f}", time.perf_counter() - t0)]
