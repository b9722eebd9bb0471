"""``python tools/bench_probes.py [--only knn|linear] [--n 200000] [--queries 10000] [--dim 384]``

Benchmark the kNN and linear probes against scikit-learn and torch on synthetic features; prints markdown.
"""

from __future__ import annotations

import faiss

from dsbias.bench.probes import bench_knn, bench_linear, markdown
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli
from dsbias.probes.search import faiss_blas


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_probes.py", __doc__, config=False)
    p.add_argument("--n", type=int, default=200_000, help="kNN bank rows")
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--query-chunk", type=int, default=4096)
    p.add_argument("--linear-n", type=int, default=150_000, help="linear-probe train rows (val = n/10)")
    p.add_argument("--only", choices=("knn", "linear"), default=None, help="run one half")
    p.add_argument("--no-sklearn-knn", action="store_true", help="skip the (slow) sklearn kNN rows")
    args = cli.parse(p, argv)
    print(f"{machine_line()}; faiss {faiss.__version__} ({faiss.get_compile_options().strip()}; GEMM: "
          f"{faiss_blas() or 'not the wheel OpenBLAS'})\n")
    if args.only != "linear":
        print(f"kNN: bank {args.n} x {args.dim}, {args.queries} queries, k={args.k}\n")
        print(markdown(bench_knn(args.n, args.queries, args.dim, args.k, args.query_chunk, not args.no_sklearn_knn)))
    if args.only != "knn":
        print(f"\nlinear: {args.linear_n} x {args.dim} train, {args.linear_n // 10} val, 3 classes\n")
        print(markdown(bench_linear(args.linear_n, args.dim)))
    return 0
