"""Command-line plumbing shared by ``probe/knn.py`` and ``probe/linear.py``: arguments, JSON, summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from dsbias.features import FeatureError, FeatureSet, load_features
from dsbias.log import setup_logging
from dsbias.probes.knn import run_knn
from dsbias.probes.linear import WD_GRID, run_linear
from dsbias.runs import provenance, write_json
from dsbias.stats import format_table

IDENTITY_KEYS = ("backbone", "pooling", "checkpoint_sha256", "manifest_sha256", "format_version")


def feature_identity(fs: FeatureSet) -> dict[str, Any]:
    """What the probed features are, so a number can be traced back to a backbone and checkpoint."""
    return {"root": str(fs.root.resolve()), "dim": fs.dim,
            **{k: fs.meta[k] for k in IDENTITY_KEYS if k in fs.meta}}


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--features", default="out/", help="run dir or features dir (default: out/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _finish(fs: FeatureSet, name: str, result: dict[str, Any], settings: dict[str, Any], title: str,
            extra: list[str], seconds: float) -> Path:
    out = fs.root / name
    write_json(out, {**result, "settings": settings, "features": feature_identity(fs), "seconds": round(seconds, 3),
                     "provenance": provenance()})
    print(format_table(result, title))
    for line in [*extra, *(f"note: {n}" for n in result.get("notes", []))]:
        print(line)
    print(f"{result['n_train']} train / {result['n_val']} val rows, {len(result['sources'])} sources, "
          f"{result['backend']}, {seconds:.1f}s -> {out}")
    return out


def _run(fn, argv: list[str] | None) -> int:
    setup_logging()
    try:
        return fn(argv)
    except (FeatureError, ValueError) as e:  # bad input: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


def main_knn(argv: list[str] | None = None) -> int:
    """``probe/knn.py``: weighted kNN (DINO protocol) of val against train; writes ``probe_knn.json``."""
    return _run(_knn, argv)


def _knn(argv: list[str] | None) -> int:
    p = _parser("probe/knn.py", "kNN probe (DINO protocol: cosine, exp(sim/T) vote) on cached features.")
    p.add_argument("--k", type=int, nargs="+", default=[20], help="neighbours; the first is primary (default 20)")
    p.add_argument("--temperature", type=float, default=0.07, help="vote temperature T (default 0.07)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="faiss backend: auto = GPU when faiss-gpu sees one (default)")
    p.add_argument("--query-chunk", type=int, default=4096, help="queries per faiss search call")
    p.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default: faiss's)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    fs = load_features(args.features)
    res = run_knn(fs, args.k, args.temperature, args.device, args.query_chunk, args.threads, not args.no_progress)
    settings = {"protocol": "DINO kNN: L2-normalised, cosine (faiss IndexFlatIP), exp(sim/T)-weighted vote",
                "k": args.k, "temperature": args.temperature, "device": args.device,
                "query_chunk": args.query_chunk, "threads": args.threads}
    extra = [f"k={r['k']:>4}: top-1 {100 * r['top1']:.2f}%  (95% CI {100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f})"
             for r in res["per_k"].values()]
    _finish(fs, "probe_knn.json", res, settings, f"kNN probe (k={res['k']}, T={args.temperature})", extra,
            time.perf_counter() - t0)
    return 0


def main_linear(argv: list[str] | None = None) -> int:
    """``probe/linear.py``: standardise + linear layer (MAE protocol); writes ``probe_linear.json``."""
    return _run(_linear, argv)


def _linear(argv: list[str] | None) -> int:
    p = _parser("probe/linear.py", "Linear probe (MAE protocol: train-standardised features + linear layer).")
    p.add_argument("--seeds", type=int, default=1, help="repeat with N held-out slices; report mean +- std")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--holdout", type=float, default=0.15, help="fraction of train held out to choose weight decay")
    p.add_argument("--wd", type=float, nargs="+", default=list(WD_GRID), help="weight-decay grid")
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations per fit")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch device (auto: CUDA if any)")
    p.add_argument("--sklearn", action="store_true", help="solve with scikit-learn LogisticRegression (baseline)")
    args = p.parse_args(argv)
    if not 0 < args.holdout < 1:
        raise ValueError(f"--holdout {args.holdout}: must be in (0, 1)")
    t0 = time.perf_counter()
    fs = load_features(args.features)
    res = run_linear(fs, args.seeds, args.seed, args.wd, args.holdout, args.max_iter, args.device, args.sklearn)
    settings = {"protocol": "MAE linear probe: train-standardised features (BN without affine) + linear layer, "
                            "multinomial logistic regression, weight decay chosen on a held-out slice of train, "
                            "refit on all of train, val predicted once",
                "solver": "sklearn LogisticRegression(lbfgs)" if args.sklearn else "torch L-BFGS (strong Wolfe)",
                "seeds": args.seeds, "seed": args.seed, "holdout": args.holdout, "wd_grid": args.wd,
                "max_iter": args.max_iter, "device": args.device}
    s = res["seeds"]
    extra = [f"chosen weight decay per seed: {', '.join(f'{w:.0e}' for w in s['weight_decay'])}"]
    if s["n"] > 1:
        extra.append(f"top-1 over {s['n']} seeds: {100 * s['mean']:.2f} +- {100 * s['std']:.2f}%")
    _finish(fs, "probe_linear.json", res, settings, "linear probe", extra, time.perf_counter() - t0)
    return 0
