"""``python probe/knn.py --features RUN_OR_FEATURES_DIR [--k 20 ...]``

kNN probe of cached features (DINO protocol: L2-normalised, cosine, exp(sim/T)-weighted vote) of val against
train, with a group-aware interval, a test against chance and, on a pretraining run, the random-init control;
writes ``probe_knn.json`` beside the features and prints the table.
"""

from __future__ import annotations

import time

from dsbias.cli import args as cli
from dsbias.features.store import load_features
from dsbias.probes.knn import run_knn
from dsbias.probes.result import run_with_control, summary_text, write_result
from dsbias.report.write import refresh
from dsbias.stats import format_p


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("probe/knn.py", __doc__, config=False)
    p.add_argument("--features", default="out/", help="run dir or features dir (default: out/)")
    p.add_argument("--k", type=int, nargs="+", default=[20], help="neighbours; the first is primary (default 20)")
    p.add_argument("--temperature", type=float, default=0.07, help="vote temperature T (default 0.07)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="faiss backend: auto = GPU when faiss-gpu sees one (default)")
    p.add_argument("--engine", choices=("auto", "faiss", "torch"), default="auto",
                   help="CPU search: auto = the faster of faiss and torch matmul + topk here, measured (default)")
    p.add_argument("--query-chunk", type=int, default=4096, help="queries per faiss search call")
    p.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default: faiss's)")
    p.add_argument("--no-init", action="store_true", help="skip the random-init control (features_init/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = cli.parse(p, argv)
    t0 = time.perf_counter()
    fs = load_features(args.features)
    res = run_with_control(fs, lambda f: run_knn(f, args.k, args.temperature, args.device, args.query_chunk,
                                                 args.threads, not args.no_progress, args.engine), not args.no_init)
    settings = {"protocol": "DINO kNN: L2-normalised, cosine (exact: faiss IndexFlatIP or torch matmul + topk), "
                            "exp(sim/T)-weighted vote",
                "k": args.k, "temperature": args.temperature, "device": args.device, "engine": args.engine,
                "query_chunk": args.query_chunk, "threads": args.threads}
    extra = [f"k={r['k']:>4}: top-1 {100 * r['top1']:.2f}%  (95% CI {100 * r['ci95'][0]:.1f}-"
             f"{100 * r['ci95'][1]:.1f}), {r['verdict']} (p = {format_p(r['p_value'])})"
             for r in res["per_k"].values()] if len(args.k) > 1 else []
    seconds = time.perf_counter() - t0
    out = write_result(fs, "knn", res, settings, seconds)
    print(summary_text(res, f"kNN probe (k={res['k']}, T={args.temperature})", extra, seconds, out))
    refresh(fs.root)
    return 0
